"""The one image container every stage consumes: :class:`ImageSet`.

Images are held as a ``uint8`` tensor of shape (N, C, H, W) with C in {1, 3}: the
exact bytes a dataset ships, so fingerprints are stable and memory is 4x smaller than
float. Stages convert batches to float on the fly with :func:`to_float`.

A set too large to hold holds :class:`LazyImages` instead (a folder read by
:func:`gmval.data.load_folder`): indexed like the tensor it stands for, it decodes only
the images asked for, and :func:`iter_chunks` streams it chunk by chunk with reader
workers, so memory is bounded by the chunk, not by the set.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class LazyImages(ABC):
    """uint8 images (N, C, H, W) produced on demand; ``x[index]`` returns a tensor as indexing
    the full tensor would (an int, a slice, or integer positions as a list, array or tensor).

    Attributes:
        num_workers: reader processes :func:`iter_chunks` uses to prepare chunks ahead.
    """

    dtype = torch.uint8
    ndim = 4
    num_workers: int = 0

    @property
    @abstractmethod
    def shape(self) -> torch.Size:
        """(N, C, H, W) of the tensor these images stand for."""

    @abstractmethod
    def load(self, index: np.ndarray) -> torch.Tensor:
        """The images at positions ``index`` (int64, any order, repeats allowed) as (B, C, H, W)."""

    @abstractmethod
    def take(self, index: np.ndarray) -> LazyImages:
        """The images at positions ``index``, still lazy."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A digest that changes whenever any image's pixels would."""

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, key: Any) -> torch.Tensor:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            one = self.load(np.array([range(len(self))[key]], dtype=np.int64))[0]
            return one[rest] if rest else one
        if isinstance(key, slice):
            out = self.load(np.arange(len(self), dtype=np.int64)[key])
        else:
            idx = np.asarray(key.cpu() if isinstance(key, torch.Tensor) else key, dtype=np.int64).reshape(-1)
            out = self.load(np.where(idx < 0, idx + len(self), idx))
        return out[(slice(None), *rest)] if rest else out


def _load_chunk(images: LazyImages, rows: slice) -> torch.Tensor:
    return images.load(np.arange(rows.start, rows.stop, dtype=np.int64))


class _Chunks(Dataset):
    """Item ``i`` is the ``i``-th chunk of images, so a DataLoader's workers decode whole chunks."""

    def __init__(self, images: LazyImages, slices: list[slice]) -> None:
        self.images, self.slices = images, slices

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return _load_chunk(self.images, self.slices[i])


def iter_chunks(images: torch.Tensor | np.ndarray | LazyImages,
                slices: Iterable[slice]) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(rows, images[rows])`` for each slice, in order. Lazy images are decoded by
    ``images.num_workers`` DataLoader workers, which prepare the next chunks while the
    caller works on this one; a tensor is simply sliced."""
    slices = list(slices)
    if not isinstance(images, LazyImages):
        yield from ((rows, images[rows]) for rows in slices)
        return
    if images.num_workers <= 0 or len(slices) < 2:
        yield from ((rows, _load_chunk(images, rows)) for rows in slices)
        return
    loader = DataLoader(_Chunks(images, slices), batch_size=None, shuffle=False,
                                         num_workers=min(images.num_workers, len(slices)), prefetch_factor=2)
    yield from zip(slices, loader, strict=True)


@dataclass(frozen=True)
class ImageSet:
    """Images with stable ids and optional class labels and binary attributes.

    Attributes:
        images: uint8 tensor (N, C, H, W), C = 1 (grey) or 3 (RGB), or :class:`LazyImages`
            standing for one.
        ids: (N,) array of unique ids (int or str) that survive subsetting and reordering.
        labels: optional (N,) int64 class labels.
        attributes: optional boolean DataFrame with N rows (one column per attribute).
        name: a short human name, used in file names and plots.
        classes: optional class names, indexed by label.
    """

    images: torch.Tensor
    ids: np.ndarray
    labels: np.ndarray | None = None
    attributes: pd.DataFrame | None = None
    name: str = "images"
    classes: tuple[str, ...] | None = None
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        x = self.images
        if not isinstance(x, (torch.Tensor, LazyImages)) or x.dtype != torch.uint8 or x.ndim != 4:
            raise TypeError(f"{self.name}: images must be a uint8 tensor (N, C, H, W), got "
                            f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
        if x.shape[1] not in (1, 3):
            raise ValueError(f"{self.name}: images must have 1 or 3 channels, got {x.shape[1]}")
        n = x.shape[0]
        if n == 0:
            raise ValueError(f"{self.name}: the image set is empty")
        ids = np.asarray(self.ids)
        object.__setattr__(self, "ids", ids)
        if ids.shape != (n,):
            raise ValueError(f"{self.name}: {n} images but ids of shape {ids.shape}")
        if len(np.unique(ids)) != n:
            raise ValueError(f"{self.name}: ids are not unique")
        if self.labels is not None:
            labels = np.asarray(self.labels, dtype=np.int64)
            object.__setattr__(self, "labels", labels)
            if labels.shape != (n,):
                raise ValueError(f"{self.name}: {n} images but labels of shape {labels.shape}")
        if self.attributes is not None:
            if len(self.attributes) != n:
                raise ValueError(f"{self.name}: {n} images but {len(self.attributes)} attribute rows")
            object.__setattr__(self, "attributes", self.attributes.reset_index(drop=True).astype(bool))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, index: np.ndarray | list[int] | torch.Tensor, name: str | None = None) -> ImageSet:
        """The images at positions ``index`` (ids, labels and attributes follow)."""
        idx = np.asarray(index, dtype=np.int64)
        return ImageSet(
            images=self.images.take(idx) if self.lazy else self.images[torch.from_numpy(idx)],
            ids=self.ids[idx],
            labels=None if self.labels is None else self.labels[idx],
            attributes=None if self.attributes is None else self.attributes.iloc[idx],
            name=name or self.name,
            classes=self.classes,
        )

    @property
    def lazy(self) -> bool:
        """The images are decoded on demand (:class:`LazyImages`), not held."""
        return isinstance(self.images, LazyImages)

    def in_memory(self) -> ImageSet:
        """This set with every image decoded and held (itself when it already is)."""
        if not self.lazy:
            return self
        return ImageSet(images=self.images[:], ids=self.ids, labels=self.labels, attributes=self.attributes,
                        name=self.name, classes=self.classes)

    def fingerprint(self) -> str:
        """SHA-256 of pixels (of their source, for lazy images), shape and ids: the cache key of
        everything computed from this set."""
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(repr(tuple(self.images.shape)).encode())
            if self.lazy:
                h.update(self.images.fingerprint().encode())
            else:
                h.update(self.images.contiguous().numpy().tobytes())
            h.update(np.asarray(self.ids).astype(str).astype("U").tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def batches(self, batch_size: int) -> list[slice]:
        """Contiguous slices covering the set, ``batch_size`` images each."""
        n = len(self)
        return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def concat(sets: list[ImageSet], name: str | None = None) -> ImageSet:
    """One set holding ``sets`` in order (decoded, for lazy sets); ids must stay unique, and labels,
    attributes and class names are kept only where every set has them (attributes: the shared columns).

    Raises:
        ValueError: for no sets or images of different shapes.
    """
    if not sets:
        raise ValueError("concat needs at least one image set")
    shapes = {s.shape for s in sets}
    if len(shapes) > 1:
        raise ValueError(f"cannot concatenate images of different shapes {sorted(shapes)}: "
                         f"{', '.join(s.name for s in sets)}")
    labelled = all(s.labels is not None for s in sets)
    attributed = all(s.attributes is not None for s in sets)
    columns = [c for c in sets[0].attributes.columns if all(c in s.attributes for s in sets)] if attributed else []
    return ImageSet(
        images=torch.cat([s.images[:] if s.lazy else s.images for s in sets]),
        ids=np.concatenate([s.ids for s in sets]),
        labels=np.concatenate([s.labels for s in sets]) if labelled else None,  # type: ignore[misc]
        attributes=pd.concat([s.attributes[columns] for s in sets], ignore_index=True)  # type: ignore[index]
        if attributed else None,
        name=name or "+".join(s.name for s in sets),
        classes=sets[0].classes if all(s.classes == sets[0].classes for s in sets) else None,
    )


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Repeat a grey channel to three; RGB passes through."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a float batch; no-op at the same size."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)


def as_imageset(images: ImageSet | torch.Tensor | np.ndarray, name: str = "images") -> ImageSet:
    """Accept an ImageSet, or a uint8 array/tensor (N, H, W), (N, C, H, W) or (N, H, W, C)."""
    if isinstance(images, ImageSet):
        return images
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype != torch.uint8:
        if x.is_floating_point() and float(x.min()) >= 0.0 and float(x.max()) <= 1.0:
            x = (x * 255.0).round().to(torch.uint8)
        else:
            raise TypeError(f"{name}: expected uint8 images or floats in [0, 1], got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    return ImageSet(images=x.contiguous(), ids=np.arange(x.shape[0]), name=name)


def centre_crop_box(h: int, w: int, th: int, tw: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the largest centred window of aspect ``th:tw`` in an ``h x w`` image."""
    if h * tw > w * th:   # too tall for the target: crop rows
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def fit_to(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> uint8 (B, *shape): grey <-> RGB (ITU-R BT.601 luma), then the largest
    centred window of the target's aspect ratio resized to it, so shapes are never squashed."""
    c, th, tw = shape
    x = images
    if x.shape[1] != c:
        x = to_rgb(x) if c == 3 else (to_float(x) * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(
            1, keepdim=True).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    h, w = x.shape[-2:]
    if (h, w) == (th, tw):
        return x.contiguous()
    top, left, ch, cw = centre_crop_box(h, w, th, tw)
    y = resize(to_float(x[..., top:top + ch, left:left + cw]), (th, tw))
    return y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


class ConformedImages(LazyImages):
    """Another set's images brought to ``shape`` by :func:`fit_to` as they are read.

    Args:
        source: a uint8 tensor (N, C, H, W) or lazy images.
        shape: the target (C, H, W).
    """

    version = 1

    def __init__(self, source: torch.Tensor | LazyImages, shape: tuple[int, int, int]) -> None:
        self.source, self.target = source, tuple(int(v) for v in shape)
        self.num_workers = getattr(source, "num_workers", 0)
        self._digest: list[str] = []

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.source), *self.target))

    def load(self, index: np.ndarray) -> torch.Tensor:
        src = self.source[index] if isinstance(self.source, LazyImages) else self.source[torch.from_numpy(index)]
        return fit_to(src, self.target)  # type: ignore[arg-type]

    def take(self, index: np.ndarray) -> ConformedImages:
        src = self.source.take(index) if isinstance(self.source, LazyImages) else self.source[torch.from_numpy(index)]
        return ConformedImages(src, self.target)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        if not self._digest:
            h = hashlib.sha256(repr(("conformed", self.version, self.target, tuple(self.source.shape))).encode())
            if isinstance(self.source, LazyImages):
                h.update(self.source.fingerprint().encode())
            else:
                h.update(self.source.contiguous().numpy().tobytes())
            self._digest.append(h.hexdigest())
        return self._digest[0]


def conform(images: ImageSet, shape: tuple[int, int, int]) -> ImageSet:
    """``images`` read at ``shape`` (C, H, W) through :func:`fit_to`; the set itself when it already is."""
    if images.shape == tuple(shape):
        return images
    return ImageSet(images=ConformedImages(images.images, shape), ids=images.ids, labels=images.labels,
                    attributes=images.attributes, name=images.name, classes=images.classes)
