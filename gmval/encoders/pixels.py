"""Weight-free recall encoders: raw pixels and their principal components."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gmval.encoders.base import Encoder, l2_normalise
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


def centre_content(x: torch.Tensor) -> torch.Tensor:
    """Float images (B, C, H, W) translated (bilinear, edges replicated) so that the centroid
    of each image's deviation from its median sits at the centre.

    A copy shifted by a few pixels is moved back onto its source: MNIST-style digits are
    centred this way, and for a photo the centroid moves with its content.
    """
    b, _, h, w = x.shape
    weight = (x - x.flatten(1).median(1).values.view(-1, 1, 1, 1)).abs().sum(1)
    total = weight.sum((1, 2)).clamp_min(1e-6)
    cy = (weight.sum(2) * torch.arange(h, dtype=x.dtype)).sum(1) / total
    cx = (weight.sum(1) * torch.arange(w, dtype=x.dtype)).sum(1) / total
    theta = torch.zeros(b, 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = (cx - (w - 1) / 2) * 2 / w, (cy - (h - 1) / 2) * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ThumbnailEncoder(Encoder):
    """A small standardised thumbnail of the centred image, unit-normalised: weight-free
    recall of near-copies.

    Centring (:func:`centre_content`) undoes shifts; shrinking averages away noise and JPEG
    blocks and makes what is left of a shift or a rescale a fraction of a pixel;
    standardising (zero mean, unit deviation per image) removes brightness and contrast
    changes; Euclidean recall on unit vectors then ranks by correlation.

    Args:
        resolution: side of the thumbnail.
        centre: centre each image first.
    """

    name = "thumbnail"

    def __init__(self, resolution: int = 8, centre: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        if resolution < 2:
            raise ValueError(f"thumbnail: resolution must be >= 2, got {resolution}")
        self.resolution, self.centre = resolution, centre

    def params(self) -> dict[str, Any]:
        return {**super().params(), "resolution": self.resolution, "centre": self.centre}

    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        from gmval.distances.pixel import standardise

        x = to_float(images.cpu())
        x = standardise(resize(centre_content(x) if self.centre else x, self.resolution))
        return l2_normalise(x.flatten(1))


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
