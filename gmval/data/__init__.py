"""Datasets as :class:`~gmval.images.ImageSet`: loaders (online and offline) and curation.

Loaders return uint8 images with stable ids::

    from gmval.data import load_dataset, add_gaussian_noise
    train = load_dataset("mnist")                      # 60,000 x 1 x 28 x 28
    noisy, noisy_ids = add_gaussian_noise(train, n=100, std=0.5, seed=0)
"""

from gmval.data.celeba import load_celeba
from gmval.data.cifar import load_cifar10
from gmval.data.curation import add_gaussian_noise, deduplicate, split_class, subsample
from gmval.data.datasets import DATASETS, list_datasets, load_dataset
from gmval.data.digits import load_digits
from gmval.data.folder import CorruptImageError, load_folder
from gmval.data.idx import ChecksumError, IdxError, file_md5, read_idx, verify_md5, write_idx
from gmval.data.mnist import load_fashion_mnist, load_mnist

__all__ = [
    "DATASETS", "ChecksumError", "CorruptImageError", "IdxError", "add_gaussian_noise", "deduplicate",
    "file_md5", "list_datasets", "load_celeba", "load_cifar10", "load_dataset", "load_digits",
    "load_fashion_mnist", "load_folder", "load_mnist", "read_idx", "split_class", "subsample",
    "verify_md5", "write_idx",
]
