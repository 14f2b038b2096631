"""CelebA (aligned faces) with its 40 binary attributes, centre-cropped and resized, cached as .npy.

The files are read in torchvision's layout (``<root>/celeba/img_align_celeba/*.jpg``,
``list_attr_celeba.txt``, ``list_eval_partition.txt``) but parsed here, so that a
partial copy (only the images and the two lists the loader needs) also works.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from gmval import paths
from gmval.data.fetch import is_online, socket_timeout
from gmval.data.npycache import cache_root, entry_key, load_entry, save_entry
from gmval.images import ImageSet

CELEBA_FOLDER = "celeba"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2, "all": None}
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def _celeba_folder(root: Path) -> Path | None:
    """``root/celeba`` (torchvision's layout) or ``root`` itself, whichever has the files."""
    for folder in (root / CELEBA_FOLDER, root):
        if (folder / CELEBA_IMAGES).is_dir() and (folder / CELEBA_ATTR).is_file() \
                and (folder / CELEBA_PARTITION).is_file():
            return folder
    return None


def _missing_error(root: Path, reason: str = "") -> FileNotFoundError:
    return FileNotFoundError(
        f"CelebA not found under {root}{reason}. Expected {root / CELEBA_FOLDER}/ holding "
        f"{CELEBA_IMAGES}/ (the aligned JPEGs, extracted from img_align_celeba.zip), {CELEBA_ATTR} "
        f"and {CELEBA_PARTITION}. Get them from {CELEBA_URL} (Google Drive / Baidu links) or a "
        "mirror such as Kaggle's 'celeba-dataset', or pass download=True to try torchvision's "
        "Google Drive download (often over quota).")


def read_attributes(path: Path) -> pd.DataFrame:
    """``list_attr_celeba.txt`` as a boolean DataFrame indexed by file name.

    The file is: a count line, a line of 40 attribute names, then ``<file> ±1 ...`` rows.
    """
    lines = path.read_text().splitlines()
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    bad = next((r for r in rows if len(r) != len(names) + 1), None)
    if bad is not None:
        raise ValueError(f"{path}: row {bad[0]!r} has {len(bad) - 1} values for {len(names)} attributes")
    values = np.array([r[1:] for r in rows], dtype=np.int64)
    return pd.DataFrame(values > 0, index=[r[0] for r in rows], columns=names)


def read_partition(path: Path) -> pd.Series:
    """``list_eval_partition.txt`` as file name -> 0 (train), 1 (valid) or 2 (test)."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return pd.Series([int(r[1]) for r in rows], index=[r[0] for r in rows], dtype=np.int64)


def _crop_resize(path: Path, size: int, crop: int | None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h) if crop is None else crop
        if side > min(w, h):
            raise ValueError(f"{path}: crop {side} is larger than the image ({w}x{h})")
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != size:
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def load_celeba(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    size: int = 64,
    crop: int | None = None,
    download: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    num_workers: int | None = None,
) -> ImageSet:
    """CelebA faces as uint8 (N, 3, size, size) with the 40 attributes; ids are file names.

    Args:
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"`` (the official partition).
        root: folder holding ``celeba/`` (torchvision's root) or the ``celeba`` folder
            itself; default ``paths.RAW / "celeba"``.
        size: output side in pixels.
        crop: side of the centred square cut before resizing; ``None`` takes the largest
            (178 for the aligned 178x218 images). DCGAN-style pipelines often use 108 or 140.
        download: let torchvision try to download CelebA into ``root`` when missing.
        cache: read/write the converted arrays under ``cache_dir`` (keyed by split, size, crop).
        cache_dir: default ``paths.CACHE / "datasets"``.
        num_workers: JPEG decoding threads; default up to 8.

    Returns:
        An :class:`ImageSet` with ``attributes`` one boolean column per attribute (the
        names of torchvision's ``attr_names``, from the file header) and no labels.

    Raises:
        FileNotFoundError: if the files are missing; the message says where to put them.
    """
    if split not in CELEBA_SPLITS:
        raise ValueError(f"split must be one of {tuple(CELEBA_SPLITS)}, got {split!r}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    root = Path(root) if root is not None else paths.RAW / "celeba"
    entry = cache_root(cache_dir) / entry_key("celeba", root, split=split, size=size, crop=crop or "max")
    cached = load_entry(entry) if cache else None
    if cached is not None:
        arrays, meta = cached
        images, ids = arrays["images"], arrays["ids"]
        attrs = pd.DataFrame(arrays["attributes"], columns=meta["attr_names"])
    else:
        folder = _celeba_folder(root)
        if folder is None and download:
            if not is_online("https://drive.google.com"):
                raise _missing_error(root, " and Google Drive is unreachable")
            from torchvision.datasets import CelebA

            try:
                with socket_timeout():
                    CelebA(root=str(root), split=split, download=True)
            except Exception as e:
                raise _missing_error(root, f" and the download failed ({type(e).__name__}: {e})") from e
            folder = _celeba_folder(root)
        if folder is None:
            raise _missing_error(root)
        table = read_attributes(folder / CELEBA_ATTR)
        part = read_partition(folder / CELEBA_PARTITION)
        wanted = CELEBA_SPLITS[split]
        files = list(part.index if wanted is None else part.index[part.to_numpy() == wanted])
        if not files:
            raise ValueError(f"{folder / CELEBA_PARTITION} lists no images for split {split!r}")
        unknown = [f for f in files if f not in table.index]
        if unknown:
            raise ValueError(f"{folder / CELEBA_ATTR} has no attributes for {unknown[0]} "
                             f"(and {len(unknown) - 1} more)")
        image_dir = folder / CELEBA_IMAGES
        absent = [f for f in files if not (image_dir / f).is_file()]
        if absent:
            raise FileNotFoundError(f"{len(absent)} image(s) of split {split!r} missing from {image_dir}, "
                                    f"e.g. {absent[0]}; re-extract img_align_celeba.zip")
        workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
        # PIL releases the GIL while decoding JPEGs, so threads scale over ~200k files.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            images = np.stack(list(pool.map(lambda f: _crop_resize(image_dir / f, size, crop), files,
                                            chunksize=64)))
        ids = np.array(files, dtype=str)
        attrs = table.loc[files].reset_index(drop=True)
        if cache:
            save_entry(entry, {"images": images, "ids": ids, "attributes": attrs.to_numpy(dtype=bool)},
                       {"attr_names": list(attrs.columns)})
    return ImageSet(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        ids=ids,
        attributes=attrs,
        name=f"celeba{size}" if split == "train" else f"celeba{size}-{split}",
    )
