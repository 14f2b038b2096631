"""CIFAR-10 from its python-pickle batches (torchvision's layout), cached as uint8 .npy."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from gmval import paths
from gmval.data.fetch import is_online, socket_timeout
from gmval.data.idx import verify_md5
from gmval.data.npycache import cache_root, entry_key, load_entry, save_entry
from gmval.images import ImageSet

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: Batch file -> md5, as listed by torchvision.datasets.CIFAR10 (copied so that a cached
#: load never imports torchvision).
CIFAR10_BATCHES = {
    "train": {"data_batch_1": "c99cafc152244af753f735de768cd75f",
              "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
              "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
              "data_batch_4": "634d18415352ddfa80567beed471001a",
              "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb"},
    "test": {"test_batch": "40351d587109b95175f43aff81a1287e"},
}
CIFAR10_META = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")


def _batch_folder(root: Path) -> Path | None:
    """The folder holding the batches: ``root/cifar-10-batches-py`` or ``root`` itself."""
    for folder in (root / CIFAR10_FOLDER, root):
        if (folder / CIFAR10_META[0]).is_file():
            return folder
    return None


def _unpickle(path: Path) -> dict:  # type: ignore[type-arg]
    with open(path, "rb") as f:
        # latin1 decodes the Python-2 pickles the dataset ships in.
        return pickle.load(f, encoding="latin1")


def read_cifar_batches(folder: Path, split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode the pickle batches of one split.

    Args:
        folder: the ``cifar-10-batches-py`` folder.
        split: ``"train"`` or ``"test"``.
        verify: check each file's md5 against torchvision's list first.

    Returns:
        (images uint8 (N, 3, 32, 32), labels int64 (N,), class names).

    Raises:
        FileNotFoundError: if a batch is missing.
        ChecksumError: if ``verify`` and a file differs from the official release.
    """
    batches = CIFAR10_BATCHES[split]
    names = list(batches) + [CIFAR10_META[0]]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}")
    if verify:
        for name, md5 in [*batches.items(), CIFAR10_META]:
            verify_md5(folder / name, md5)
    data, labels = [], []
    for name in batches:
        entry = _unpickle(folder / name)
        data.append(np.asarray(entry["data"], dtype=np.uint8))
        labels.extend(entry["labels"])
    classes = list(_unpickle(folder / CIFAR10_META[0])["label_names"])
    # Rows are 3072 bytes, channel-major (1024 R, then G, then B): already (C, H, W).
    images = np.concatenate(data).reshape(-1, 3, 32, 32)
    return images, np.asarray(labels, dtype=np.int64), classes


def _missing_error(root: Path, reason: str = "") -> FileNotFoundError:
    return FileNotFoundError(
        f"CIFAR-10 not found under {root}{reason}. Expected {root / CIFAR10_FOLDER}/ with "
        f"data_batch_1..5, test_batch and batches.meta. Download {CIFAR10_URL} and extract it "
        f"into {root} (`tar xzf cifar-10-python.tar.gz -C {root}`), or pass download=True when online.")


def load_cifar10(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    verify: bool = True,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageSet:
    """CIFAR-10 as uint8 (N, 3, 32, 32), labels 0..9, ids 0..N-1.

    Args:
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        root: folder holding ``cifar-10-batches-py`` (or that folder itself);
            default ``paths.RAW / "cifar10"``.
        download: let torchvision download the archive into ``root`` when it is missing.
        verify: check the batch files' md5s on the first (uncached) load.
        cache: read/write the converted arrays under ``cache_dir``.
        cache_dir: default ``paths.CACHE / "datasets"``.

    Raises:
        FileNotFoundError: if the batches are missing (and could not be downloaded); the
            message says where to put them.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else paths.RAW / "cifar10"
    entry = cache_root(cache_dir) / entry_key("cifar10", root, split=split)
    cached = load_entry(entry) if cache else None
    if cached is not None:
        arrays, meta = cached
        images, labels, classes = arrays["images"], arrays["labels"], meta["classes"]
    else:
        folder = _batch_folder(root)
        if folder is None and download:
            if not is_online(CIFAR10_URL):
                raise _missing_error(root, f" and {CIFAR10_URL} is unreachable")
            from torchvision.datasets import CIFAR10

            try:
                with socket_timeout():
                    CIFAR10(root=str(root), train=split == "train", download=True)
            except Exception as e:
                raise _missing_error(root, f" and the download failed ({type(e).__name__}: {e})") from e
            folder = _batch_folder(root)
        if folder is None:
            raise _missing_error(root)
        images, labels, classes = read_cifar_batches(folder, split, verify=verify)
        if cache:
            save_entry(entry, {"images": images, "labels": labels}, {"classes": classes})
    return ImageSet(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        ids=np.arange(len(images), dtype=np.int64),
        labels=labels,
        name="cifar10" if split == "train" else f"cifar10-{split}",
        classes=tuple(classes),
    )
