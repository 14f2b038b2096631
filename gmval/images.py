"""The one image container every stage consumes: :class:`ImageSet`.

Images are held as a ``uint8`` tensor of shape (N, C, H, W) with C in {1, 3}: the
exact bytes a dataset ships, so fingerprints are stable and memory is 4x smaller than
float. Stages convert batches to float on the fly with :func:`to_float`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ImageSet:
    """Images with stable ids and optional class labels and binary attributes.

    Attributes:
        images: uint8 tensor (N, C, H, W), C = 1 (grey) or 3 (RGB).
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
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
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
            images=self.images[torch.from_numpy(idx)],
            ids=self.ids[idx],
            labels=None if self.labels is None else self.labels[idx],
            attributes=None if self.attributes is None else self.attributes.iloc[idx],
            name=name or self.name,
            classes=self.classes,
        )

    def fingerprint(self) -> str:
        """SHA-256 of pixels, shape and ids: the cache key of everything computed from this set."""
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(repr(tuple(self.images.shape)).encode())
            h.update(self.images.contiguous().numpy().tobytes())
            h.update(np.asarray(self.ids).astype(str).astype("U").tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def batches(self, batch_size: int) -> list[slice]:
        """Contiguous slices covering the set, ``batch_size`` images each."""
        n = len(self)
        return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def concat(sets: list[ImageSet], name: str | None = None) -> ImageSet:
    """One set holding ``sets`` in order; ids must stay unique, and labels, attributes and
    class names are kept only where every set has them (attributes: the shared columns).

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
        images=torch.cat([s.images for s in sets]),
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
