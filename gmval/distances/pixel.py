"""Pixel-space distances: the paper's l2-distance and SSIM."""

from __future__ import annotations

import math
from typing import Any

import torch

from gmval.distances.base import Distance, squared_euclidean
from gmval.images import resize, to_float


class PixelL2(Distance):
    """Root-mean-square pixel difference in [0, 1] (the paper's l2-distance, scaled per pixel).

    Dividing by the pixel count keeps d in [0, 1] whatever the image size, so exp(-d)
    in Eq. 6 means the same on MNIST and on 64x64 colour images.

    Args:
        resolution: compare at this side length; ``None`` keeps the native size.
    """

    name = "l2"
    cache_features = False

    def __init__(self, resolution: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.resolution = resolution

    def params(self) -> dict[str, Any]:
        return {**super().params(), "resolution": self.resolution}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images)
        if self.resolution is not None:
            x = resize(x, self.resolution)
        x = x.flatten(1)
        return x / math.sqrt(x.shape[1])

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(a, b).sqrt_()


class SSIMDistance(Distance):
    """1 - SSIM on luma (pyiqa's SSIM: 11x11 Gaussian window, sigma 1.5, data range 1).

    Features are the flattened luma images behind their height and width (so cached
    features carry their own shape); SSIM itself is evaluated per pair.
    """

    name = "ssim"
    cache_features = False

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images)
        if x.shape[1] == 3:  # ITU-R BT.601 luma, as SSIM's reference implementation
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        h, w = x.shape[-2:]
        if min(h, w) < 11:
            raise ValueError(f"ssim needs images of at least 11x11 pixels, got {h}x{w}")
        shape = torch.tensor([h, w], dtype=x.dtype).expand(len(x), 2)
        return torch.cat([shape, x.flatten(1)], dim=1)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from pyiqa.archs.ssim_arch import ssim

        h, w = (int(v) for v in a[0, :2])
        bsz, k, _ = b.shape
        x = a[:, 2:].float()[:, None].expand(-1, k, -1).reshape(bsz * k, 1, h, w)
        y = b[:, :, 2:].float().reshape(bsz * k, 1, h, w)
        return (1.0 - ssim(x, y, data_range=1.0)).reshape(bsz, k).float()
