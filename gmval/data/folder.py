"""Any folder of image files (PNG, JPEG, BMP, WebP, TIFF, ...) as an :class:`ImageSet`.

Ids are the files' paths relative to the folder, so results can be traced back to files.
A folder whose images all sit in first-level subfolders (torchvision's ``ImageFolder``
layout, ``root/<class>/<file>``) gets class labels from the subfolder names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from gmval.images import ImageSet

#: File suffixes (lower case) that are read as images; everything else is ignored.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".tga"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_SIXTEEN_BIT = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
T = TypeVar("T")
R = TypeVar("R")


class CorruptImageError(ValueError):
    """An image file cannot be decoded."""


def _parse_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return hw  # type: ignore[return-value]


def list_images(root: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``root``, sorted by relative path; hidden files and folders are skipped."""
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = [p for p in pattern
             if p.suffix.lower() in IMAGE_EXTENSIONS
             # .ipynb_checkpoints, .DS_Store, macOS "._x.png" resource forks: never data
             and not any(part.startswith(".") for part in p.relative_to(root).parts)
             and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _is_colour(im: Image.Image) -> bool:
    if im.mode in _GREY_MODES:
        return False
    if im.mode in ("P", "PA"):
        # A palette image is grey when every palette entry is; the palette is in the
        # header, so no pixels are decoded.
        pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((pal != pal[:, :1]).any())
    return True


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    if im.mode in _SIXTEEN_BIT or im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        # PIL's convert("L") clips 16-bit values at 255 instead of rescaling them, which
        # would turn most 16-bit images white.
        top = 1.0 if im.mode == "F" and arr.max() <= 1.0 else 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    elif im.mode == "P" and "transparency" in im.info:
        # Going through RGBA avoids PIL's warning about byte-coded palette transparency.
        im = im.convert("RGBA")
    # Alpha is dropped, not composited: the colour under a transparent pixel is kept.
    return im if im.mode == mode else im.convert(mode)


def _probe(path: Path) -> tuple[tuple[int, int], bool] | Exception:
    """(height, width) and colourfulness from the header alone, or the error opening it."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w), _is_colour(im)
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad files
        return e


def _decode(path: Path, mode: str, hw: tuple[int, int]) -> np.ndarray | Exception:
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so truncated files fail here and not later
            im = _to_mode(im, mode)
            if im.size != (hw[1], hw[0]):
                im = im.resize((hw[1], hw[0]), Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
            return arr[:, :, None] if arr.ndim == 2 else arr
    except Exception as e:  # noqa: BLE001
        return e


def _map(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    if workers <= 1 or len(items) < 64:
        return [fn(x) for x in items]
    # PIL releases the GIL while decoding and resizing, so threads scale.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items, chunksize=32))


def _describe(bad: dict[Path, Exception], root: Path) -> str:
    return "\n".join(f"  {p.relative_to(root).as_posix()}: {type(e).__name__}: {e}" for p, e in bad.items())


def _raise_bad(bad: dict[Path, Exception], root: Path) -> None:
    if not bad:
        return
    first, err = next(iter(bad.items()))
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    raise CorruptImageError(f"cannot read image {first}{more}: {type(err).__name__}: {err}\n"
                            "Pass skip_corrupt=True to skip unreadable files. Unreadable:\n" + _describe(bad, root))


def load_folder(
    path: str | os.PathLike[str],
    size: int | Sequence[int] | None = None,
    mode: str | None = None,
    recursive: bool = True,
    labels: bool | None = None,
    skip_corrupt: bool = False,
    name: str | None = None,
    num_workers: int | None = None,
) -> ImageSet:
    """Read every image file under ``path`` into one uint8 set.

    Args:
        path: the folder.
        size: ``(height, width)`` or an int for square images: every image is resized to
            it (bicubic, antialiased when shrinking; aspect ratio is not kept). ``None``
            requires all images to share one size.
        mode: ``"L"`` (grey) or ``"RGB"`` to force one; ``None`` gives RGB when any image
            is in colour, else grey. Alpha channels are dropped; 16-bit images are rescaled.
        recursive: also read subfolders.
        labels: ``None`` labels the images by first-level subfolder when the folder has the
            ImageFolder layout (no images at the top level, at least two class folders);
            ``True`` requires that layout (one class folder is then enough); ``False`` never labels.
        skip_corrupt: skip unreadable files with a warning that lists them, instead of raising.
        name: the set's name; default the folder's name.
        num_workers: decoding threads; default up to 8.

    Returns:
        An :class:`ImageSet` with ``ids`` the files' relative POSIX paths, in sorted order.

    Raises:
        FileNotFoundError / NotADirectoryError: if ``path`` is not a folder.
        ValueError: if the folder holds no images, if sizes differ and ``size`` is None
            (naming two offending files), or if ``labels=True`` without class folders.
        CorruptImageError: if a file cannot be decoded and ``skip_corrupt`` is False.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    if mode is not None and mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L', 'RGB' or None, got {mode!r}")
    target = _parse_size(size)
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)

    files = list_images(root, recursive)
    if not files:
        where = "in it or its subfolders" if recursive else "directly in it (recursive=False)"
        raise ValueError(f"no images in folder {root}: found no {'/'.join(sorted(IMAGE_EXTENSIONS))} "
                         f"files {where}")

    probes = _map(_probe, files, workers)
    bad = {p: r for p, r in zip(files, probes, strict=True) if isinstance(r, Exception)}
    if not skip_corrupt:
        _raise_bad(bad, root)
    meta = {p: r for p, r in zip(files, probes, strict=True) if not isinstance(r, Exception)}
    files = list(meta)
    if not files:
        raise ValueError(f"no readable images in folder {root}:\n{_describe(bad, root)}")

    out_mode = mode or ("RGB" if any(colour for _, colour in meta.values()) else "L")
    if target is None:
        first = files[0]
        hw = meta[first][0]
        odd = next((p for p in files if meta[p][0] != hw), None)
        if odd is not None:
            n_sizes = len({m[0] for m in meta.values()})
            raise ValueError(
                f"images in {root} have {n_sizes} different sizes, e.g. "
                f"{first.relative_to(root).as_posix()} is {hw[0]}x{hw[1]} and "
                f"{odd.relative_to(root).as_posix()} is {meta[odd][0][0]}x{meta[odd][0][1]} (height x width); "
                "pass size=(height, width) or size=<int> to resize them all")
        target = hw

    arrays = _map(lambda p: _decode(p, out_mode, target), files, workers)
    undecodable = {p: a for p, a in zip(files, arrays, strict=True) if isinstance(a, Exception)}
    if not skip_corrupt:
        _raise_bad(undecodable, root)
    bad = dict(sorted({**bad, **undecodable}.items(), key=lambda item: item[0].relative_to(root).as_posix()))
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) in {root}:\n{_describe(bad, root)}", stacklevel=2)
    kept = [(p, a) for p, a in zip(files, arrays, strict=True) if not isinstance(a, Exception)]
    if not kept:
        raise ValueError(f"no readable images in folder {root}")

    rel = [p.relative_to(root).as_posix() for p, _ in kept]
    pixels = np.stack([a for _, a in kept]).transpose(0, 3, 1, 2)
    label_arr, classes = _folder_labels(rel, labels, root)
    return ImageSet(
        images=torch.from_numpy(np.ascontiguousarray(pixels)),
        ids=np.array(rel, dtype=str),
        labels=label_arr,
        name=name or root.resolve().name,
        classes=classes,
    )


def _folder_labels(rel: list[str], labels: bool | None, root: Path) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    if labels is False:
        return None, None
    tops = [r.split("/")[0] if "/" in r else None for r in rel]
    layout = all(t is not None for t in tops)
    classes = tuple(sorted({t for t in tops if t is not None}))
    if labels is None and not (layout and len(classes) >= 2):
        return None, None
    if not layout:
        loose = next(r for r, t in zip(rel, tops, strict=True) if t is None)
        raise ValueError(f"labels=True needs the ImageFolder layout ({root}/<class>/<image>), but "
                         f"{loose} is not in a class folder")
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[t] for t in tops], dtype=np.int64), classes  # type: ignore[index]
