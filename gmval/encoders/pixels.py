"""Weight-free recall encoders: raw pixels and their principal components."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gmval.encoders.base import Encoder
from gmval.images import ImageSet, resize, to_float


class PixelEncoder(Encoder):
    """Flattened pixels in [0, 1], optionally resized; Euclidean recall is then pixel L2.

    Args:
        resolution: side to resize to before flattening; ``None`` keeps the native size.
    """

    name = "pixels"

    def __init__(self, resolution: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.resolution = resolution

    def params(self) -> dict[str, Any]:
        return {**super().params(), "resolution": self.resolution}

    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images)
        if self.resolution is not None:
            x = resize(x, self.resolution)
        return x.flatten(1).cpu()


class PCAEncoder(Encoder):
    """Projection of pixels onto the top principal components of the training set.

    Args:
        dim: number of components.
        fit_samples: at most this many training images (a seeded random subset) fit the basis.
        resolution: as for :class:`PixelEncoder`.
        seed: subset seed.
    """

    name = "pca"

    def __init__(self, dim: int = 64, fit_samples: int = 20_000, resolution: int | None = None,
                 seed: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.dim, self.fit_samples, self.seed = dim, fit_samples, seed
        self.pixels = PixelEncoder(resolution=resolution, device="cpu", batch_size=self.batch_size)
        self.fitted_on: str | None = None
        self.mean: torch.Tensor | None = None
        self.basis: torch.Tensor | None = None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "dim": self.dim, "fit_samples": self.fit_samples,
                "resolution": self.pixels.resolution, "seed": self.seed, "fitted_on": self.fitted_on}

    def fit(self, train: ImageSet) -> None:
        rng = np.random.default_rng(self.seed)
        n = len(train)
        idx = np.sort(rng.choice(n, size=min(n, self.fit_samples), replace=False))
        x = self.pixels.encode(train.images[torch.from_numpy(idx)]).double()
        if self.dim > min(x.shape):
            raise ValueError(f"pca: dim={self.dim} exceeds min(samples, pixels) = {min(x.shape)}")
        self.mean = x.mean(0)
        # Principal directions from the SVD of the centred data, signs fixed for determinism.
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        basis = vh[: self.dim]
        basis *= torch.sign(basis[torch.arange(self.dim), basis.abs().argmax(1)])[:, None]
        self.basis = basis.float()
        self.mean = self.mean.float()
        self.fitted_on = train.fingerprint()

    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        if self.basis is None or self.mean is None:
            raise RuntimeError("pca encoder is not fitted: call fit(train) first")
        return (self.pixels.encode_batch(images) - self.mean) @ self.basis.T
