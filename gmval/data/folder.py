"""Any folder of image files (PNG, JPEG, BMP, WebP, TIFF, ...) as an :class:`ImageSet`.

Ids are the files' paths relative to the folder, so results can be traced back to files.
A folder whose images all sit in first-level subfolders (torchvision's ``ImageFolder``
layout, ``root/<class>/<file>``) gets class labels from the subfolder names.

The folder is read lazily: :func:`load_folder` lists the files and reads their headers,
and pixels are decoded only when a stage asks for them, chunk by chunk (see
:class:`~gmval.images.LazyImages`). Every image is delivered on one grid, chosen by this rule:

* all images share one size: that size (shrunk, aspect kept, to fit :data:`MAX_SIDE`);
* sizes differ: a square of side ``min(median short side, MAX_SIDE)``; each image's
  largest centred square is resized to it (cropped, never squashed);
* ``size`` given: that size; each image's largest centred window of that aspect is resized.

Stages then resize to what they need (the encoder to its resolution, pixel distances to
their grid). Grey is decided per folder: it is grey when every image is, counting RGB files
whose three channels are equal.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from gmval.images import ImageSet, LazyImages, centre_crop_box

#: File suffixes (lower case) that are read as images; everything else is ignored.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".tga"})
#: Longest side of the grid images are delivered on, unless ``size`` asks for more: a chunk
#: of 1,024 RGB images then holds at most 192 MiB, and every stage works at a lower resolution.
MAX_SIDE = 256
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
#: Full-scale value of each wide mode: 16-bit images are scaled by their type, never by their
#: values; PIL keeps 32-bit integer images in "I", which is read in the 16-bit range as well.
_FULL_SCALE = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}
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
    """Image files under ``root``, sorted by relative path; hidden files and folders are skipped.

    Symbolic links whose target is missing are listed too, so that reading them names them.
    """
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = [p for p in pattern
             if p.suffix.lower() in IMAGE_EXTENSIONS
             # .ipynb_checkpoints, .DS_Store, macOS "._x.png" resource forks: never data
             and not any(part.startswith(".") for part in p.relative_to(root).parts)
             and (p.is_file() or (p.is_symlink() and not p.exists()))]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _is_colour(im: Image.Image) -> bool:
    """Colour by the header: grey modes, and palettes whose every entry is grey, are not."""
    if im.mode in _GREY_MODES:
        return False
    if im.mode in ("P", "PA"):
        pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((pal != pal[:, :1]).any())
    return True


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    if im.mode in _FULL_SCALE:
        # PIL's convert("L") clips wide values at 255 instead of rescaling them.
        arr = np.asarray(im, dtype=np.float64) * (255.0 / _FULL_SCALE[im.mode])
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    elif im.mode == "P" and "transparency" in im.info:
        # Going through RGBA avoids PIL's warning about byte-coded palette transparency.
        im = im.convert("RGBA")
    # Alpha is dropped, not composited: the colour under a transparent pixel is kept.
    return im if im.mode == mode else im.convert(mode)


def _open(path: Path) -> Image.Image:
    if path.is_symlink() and not path.exists():
        raise FileNotFoundError(f"dangling symbolic link to {os.readlink(path)}")
    return Image.open(path)


def _probe(path: Path) -> tuple[tuple[int, int], bool] | Exception:
    """(height, width) and colourfulness from the header alone, or the error opening it."""
    try:
        with _open(path) as im:
            w, h = im.size
            return (h, w), _is_colour(im)
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad files
        return e


def _decode(path: Path, mode: str, hw: tuple[int, int]) -> np.ndarray:
    """The image at ``path`` as uint8 (H, W, C) on the grid ``hw`` (largest centred window, resized)."""
    with _open(path) as im:
        if im.format == "JPEG" and mode in ("L", "RGB"):
            im.draft(mode, (hw[1], hw[0]))  # decode at a reduced scale no smaller than the grid
        im.load()  # decode now, so truncated files fail here and not later
        im = _to_mode(im, mode)
        w, h = im.size
        if (h, w) != hw:
            top, left, ch, cw = centre_crop_box(h, w, *hw)
            im = im.resize((hw[1], hw[0]), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
        arr = np.asarray(im, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr


def _decode_or_error(path: Path, mode: str, hw: tuple[int, int]) -> np.ndarray | Exception:
    try:
        return _decode(path, mode, hw)
    except Exception as e:  # noqa: BLE001
        return e


def _grey_pixels(path: Path) -> bool:
    """An RGB file whose three channels are equal everywhere (grey saved as colour)."""
    try:
        with _open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 -- reading it later names the error
        return True
    return bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())


def _map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    if threads <= 1 or len(items) < 64:
        return [fn(x) for x in items]
    # PIL and hashlib release the GIL while decoding, resizing and hashing, so threads scale.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items, chunksize=32))


def _file_digest(path: Path) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _describe(bad: dict[Path, Exception], root: Path) -> str:
    return "\n".join(f"  {p.relative_to(root).as_posix()}: {type(e).__name__}: {e}" for p, e in bad.items())


def _raise_bad(bad: dict[Path, Exception], root: Path) -> None:
    if not bad:
        return
    first, err = next(iter(bad.items()))
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    raise CorruptImageError(f"cannot read image {first}{more}: {type(err).__name__}: {err}\n"
                            "Pass skip_corrupt=True (CLI: --skip-corrupt) to skip unreadable files. Unreadable:\n"
                            + _describe(bad, root))


class FolderImages(LazyImages):
    """Image files decoded on demand, all delivered as uint8 (C, H, W).

    Args:
        root: the folder (errors name files relative to it).
        files: the image files, in set order.
        mode: ``"L"`` or ``"RGB"``.
        hw: the grid (height, width).
        threads: decoding threads within one :meth:`load`.
        num_workers: reader processes for streamed chunks (:func:`~gmval.images.iter_chunks`).
    """

    version = 1  # the grid rule and the decoding

    def __init__(self, root: Path, files: list[Path], mode: str, hw: tuple[int, int], threads: int,
                 num_workers: int) -> None:
        self.root, self.files, self.mode, self.hw = root, files, mode, hw
        self.threads, self.num_workers = threads, num_workers
        self._digest: list[str] = []

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), 1 if self.mode == "L" else 3, *self.hw))

    def load(self, index: np.ndarray) -> torch.Tensor:
        wanted = [self.files[int(i)] for i in index]
        # within a DataLoader worker the workers already run in parallel
        threads = 1 if torch.utils.data.get_worker_info() is not None else self.threads
        arrays = _map(lambda p: _decode_or_error(p, self.mode, self.hw), wanted, threads)
        _raise_bad({p: a for p, a in zip(wanted, arrays, strict=True) if isinstance(a, Exception)}, self.root)
        out = np.empty((len(wanted), *self.hw, self.shape[1]), dtype=np.uint8)
        for i, a in enumerate(arrays):
            out[i] = a
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    def take(self, index: np.ndarray) -> FolderImages:
        return FolderImages(self.root, [self.files[int(i)] for i in index], self.mode, self.hw, self.threads,
                            self.num_workers)

    def fingerprint(self) -> str:
        """SHA-256 of the files' relative paths and bytes and of how they are decoded."""
        if not self._digest:
            h = hashlib.sha256(repr(("folder", self.version, self.mode, self.hw)).encode())
            for p, digest in zip(self.files, _map(_file_digest, self.files, self.threads), strict=True):
                h.update(p.relative_to(self.root).as_posix().encode() + b"\0" + digest)
            self._digest.append(h.hexdigest())
        return self._digest[0]


def _grid(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The grid of the module docstring's rule for images of these (height, width)s."""
    if len(set(sizes)) == 1:
        h, w = sizes[0]
        if max(h, w) <= MAX_SIDE:
            return h, w
        scale = MAX_SIDE / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))
    side = int(np.median([min(hw) for hw in sizes]))
    return min(side, MAX_SIDE), min(side, MAX_SIDE)


def load_folder(
    path: str | os.PathLike[str],
    size: int | Sequence[int] | None = None,
    mode: str | None = None,
    recursive: bool = True,
    labels: bool | None = None,
    skip_corrupt: bool = False,
    name: str | None = None,
    num_workers: int | None = None,
    lazy: bool = True,
) -> ImageSet:
    """The image files under ``path`` as one uint8 set, decoded on demand.

    Args:
        path: the folder.
        size: ``(height, width)`` or an int for square images: the grid every image is
            delivered on (its largest centred window of that aspect ratio, resized: bicubic,
            antialiased when shrinking). ``None`` follows the module docstring's rule, so
            folders of mixed sizes need no flag.
        mode: ``"L"`` (grey) or ``"RGB"`` to force one; ``None`` gives grey when every
            image is grey (grey modes, grey palettes, RGB files with equal channels), else
            RGB. Alpha channels are dropped; 16-bit images are scaled by their type.
        recursive: also read subfolders.
        labels: ``None`` labels the images by first-level subfolder when the folder has the
            ImageFolder layout (no images at the top level, at least two class folders);
            ``True`` requires that layout (one class folder is then enough); ``False`` never labels.
        skip_corrupt: decode every file once now and skip unreadable ones with a warning that
            lists them. Otherwise unreadable headers raise now and undecodable pixels raise
            when first read, naming the file either way.
        name: the set's name; default the folder's name.
        num_workers: reader processes that decode streamed chunks ahead of the stage using
            them; default one fewer than the cores, at most 4 (0: decode in the calling process).
        lazy: ``False`` decodes every image now and holds them as a tensor.

    Returns:
        An :class:`ImageSet` with ``ids`` the files' relative POSIX paths, in sorted order,
        and :class:`FolderImages` as its images (a tensor when ``lazy`` is False).

    Raises:
        FileNotFoundError / NotADirectoryError: if ``path`` is not a folder.
        ValueError: if the folder holds no images or ``labels=True`` without class folders.
        CorruptImageError: if a file (a dangling link, an unreadable or undecodable file)
            cannot be read and ``skip_corrupt`` is False.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    if mode is not None and mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L', 'RGB' or None, got {mode!r}")
    target = _parse_size(size)
    threads = min(8, os.cpu_count() or 1)
    workers = num_workers if num_workers is not None else max(0, min(4, (os.cpu_count() or 1) - 1))

    files = list_images(root, recursive)
    if not files:
        where = "in it or its subfolders" if recursive else "directly in it (recursive=False)"
        raise ValueError(f"no images in folder {root}: found no {'/'.join(sorted(IMAGE_EXTENSIONS))} "
                         f"files {where}")

    probes = _map(_probe, files, threads)
    bad = {p: r for p, r in zip(files, probes, strict=True) if isinstance(r, Exception)}
    if not skip_corrupt:
        _raise_bad(bad, root)
    meta = {p: r for p, r in zip(files, probes, strict=True) if not isinstance(r, Exception)}
    files = list(meta)
    if not files:
        raise ValueError(f"no readable images in folder {root}:\n{_describe(bad, root)}")

    hw = target or _grid([meta[p][0] for p in files])
    out_mode = mode or _folder_mode(files, meta, threads)
    if skip_corrupt:
        checked = _map(lambda p: _decode_or_error(p, out_mode, hw), files, threads)
        bad |= {p: a for p, a in zip(files, checked, strict=True) if isinstance(a, Exception)}
        files = [p for p, a in zip(files, checked, strict=True) if not isinstance(a, Exception)]
        if bad:
            bad = dict(sorted(bad.items(), key=lambda item: item[0].relative_to(root).as_posix()))
            warnings.warn(f"skipped {len(bad)} unreadable image(s) in {root}:\n{_describe(bad, root)}", stacklevel=2)
        if not files:
            raise ValueError(f"no readable images in folder {root}")

    rel = [p.relative_to(root).as_posix() for p in files]
    label_arr, classes = _folder_labels(rel, labels, root)
    images = FolderImages(root, files, out_mode, hw, threads, workers)
    return ImageSet(images=images if lazy else images[:], ids=np.array(rel, dtype=str), labels=label_arr,
                    name=name or root.resolve().name, classes=classes)


def _folder_mode(files: list[Path], meta: dict[Path, tuple[tuple[int, int], bool]], threads: int) -> str:
    """"L" when every image is grey, else "RGB". Only files whose header says colour are
    decoded, in batches, and only until the first one with colour pixels."""
    colour = [p for p in files if meta[p][1]]
    batch = max(1, threads) * 32
    for start in range(0, len(colour), batch):
        if not all(_map(_grey_pixels, colour[start:start + batch], threads)):
            return "RGB"
    return "L"


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
