"""Deep-feature distance on EfficientNet-Lite0: the offline stand-in for LPIPS.

This is *not* LPIPS: it has no learned per-channel weights (LPIPS's "lin" layers were
fit to human judgements on AlexNet/VGG features). It is the unweighted variant that the
LPIPS paper calls "baseline": at five depths, unit-normalise each spatial feature vector
across channels, average the squared differences over positions, and sum over depths.
Because that is a squared Euclidean distance between flattened, pre-scaled maps, the
maps are computed once per image and compared with one dot product per pair.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from gmval.distances.base import Distance, squared_euclidean
from gmval.encoders.efficientnet import TAP_BLOCKS, load_efficientnet_lite0, preprocess
from gmval.precision import Precision, forward_precision, resolve_precision


class EfficientNetFeatureDistance(Distance):
    """Unweighted multi-layer feature distance on ImageNet EfficientNet-Lite0.

    Args:
        resolution: input side in pixels.
        max_side: average-pool each tapped map to at most this side before comparing (smaller
            features, coarser spatial comparison); ``None`` compares at full resolution.
        precision: forward precision, as for the encoder (:mod:`gmval.precision`); the maps
            are normalised and stored in float16 either way.
    """

    name = "effnet-features"
    feature_dtype = torch.float16
    version = 2  # channels-last and the precision setting

    def __init__(self, resolution: int = 32, max_side: int | None = None, precision: Precision = "auto",
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.resolution, self.max_side = resolution, max_side
        self.precision = resolve_precision(precision, self.device)
        self.net = load_efficientnet_lite0(resolution).to(self.device)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "resolution": self.resolution, "max_side": self.max_side,
                "taps": list(TAP_BLOCKS), "precision": self.precision}

    def taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the tapped blocks, channel-unit-normalised."""
        net = self.net
        maps = []
        with forward_precision(self.precision, self.device):
            x = net._swish(net._bn0(net._conv_stem(preprocess(images.to(self.device), self.resolution))))
            for i, block in enumerate(net._blocks):
                x = block(x)  # drop-connect is inactive in eval mode
                if i in TAP_BLOCKS:
                    maps.append(F.normalize(x.float(), dim=1, eps=1e-10))
                if i == TAP_BLOCKS[-1]:
                    break
        return maps

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        parts = []
        for fmap in self.taps(images):
            if self.max_side is not None and max(fmap.shape[-2:]) > self.max_side:
                fmap = F.adaptive_avg_pool2d(fmap, self.max_side)
            # 1/sqrt(H*W) turns the squared-difference sum into LPIPS's spatial mean.
            parts.append(fmap.flatten(1) / math.sqrt(fmap.shape[-2] * fmap.shape[-1]))
        return torch.cat(parts, dim=1).cpu()

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(a, b)
