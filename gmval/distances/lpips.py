"""LPIPS (Zhang et al. 2018) with the ``lpips`` package's own network and learned weights.

LPIPS(x, y) = sum_l mean_{h,w} sum_c w_lc (n(f_l(x)) - n(f_l(y)))_{chw}^2, where f_l are
backbone activations, n unit-normalises each spatial position across channels, and the
learned weights w_lc are non-negative. Scaling n(f_l(x)) by sqrt(w_lc / (H_l W_l)) and
flattening therefore turns LPIPS into a plain squared Euclidean distance between
per-image feature vectors: :meth:`LPIPSDistance.features` runs the backbone once per image
and :meth:`~LPIPSDistance.pairwise` reproduces ``lpips.LPIPS.forward`` exactly (up to
float rounding, and to the float16 storage of cached features).

Weights: the linear heads ship inside the ``lpips`` wheel; the backbone is torchvision's
ImageNet model (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth`` or
``squeezenet1_1-b8a52dc0.pth``), read from ``<torch home>/hub/checkpoints/`` where
torchvision caches it. If it is missing it is downloaded there or, offline, a
:class:`~gmval.hub.WeightsUnavailableError` says where to put it; downloaded or cached, it is
checked against the full SHA-256 pinned in :data:`BACKBONE_SHA256` before torchvision reads it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from gmval import hub
from gmval.distances.base import Distance, squared_euclidean
from gmval.images import resize, to_float, to_rgb

#: lpips backbone name -> the torchvision weights enum member that lpips's ``pretrained=True`` loads.
_BACKBONES = {"alex": ("AlexNet_Weights", "IMAGENET1K_V1"),
              "vgg": ("VGG16_Weights", "IMAGENET1K_V1"),
              "squeeze": ("SqueezeNet1_1_Weights", "IMAGENET1K_V1")}

#: Full SHA-256 of each backbone file; each starts with the prefix torchvision puts in its name.
BACKBONE_SHA256 = {"alex": "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
                   "vgg": "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
                   "squeeze": "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b"}


def backbone_url(net: str) -> str:
    """URL of the torchvision checkpoint that lpips loads for backbone ``net``."""
    import torchvision.models

    enum_name, member = _BACKBONES[net]
    return getattr(torchvision.models, enum_name)[member].url


def ensure_backbone(net: str, hub_dir: str | Path) -> Path:
    """Path of the backbone checkpoint in torch.hub's cache ``hub_dir``, downloading it if missing.

    Downloaded or found in the cache, the file must have the pinned SHA-256 (torchvision
    itself checks only the prefix in its name, and only at download).
    """
    url = backbone_url(net)
    name = url.rsplit("/", 1)[-1]
    return hub.fetch(url, Path(hub_dir) / "checkpoints" / name, sha256=BACKBONE_SHA256[net])


class LPIPSDistance(Distance):
    """LPIPS as a squared Euclidean distance between cached per-image features.

    Args:
        net: backbone, ``"alex"`` (the LPIPS default), ``"vgg"`` or ``"squeeze"``.
        version: LPIPS linear-head version (``"0.1"``; ``"0.0"`` is the original, unscaled release).
        cache_dir: a ``TORCH_HOME``-like folder; the backbone is read from
            ``<cache_dir>/hub/checkpoints/``. ``None`` uses torch.hub's folder
            (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``).
        pnet_rand: random backbone instead of ImageNet weights (tests and timing only; no download).
        spatial_size: images are resized (bilinear, antialiased) to this side before the backbone;
            AlexNet needs at least 32 px, so MNIST's 28 px cannot go in unresized. ``None``
            keeps the native size.
        **kw: :class:`~gmval.component.Component` arguments (device, batch_size).

    Raises:
        WeightsUnavailableError: the backbone is neither cached nor downloadable.
    """

    name = "lpips"
    #: Features are about 32k values per image for AlexNet at 64 px; half precision halves the cache.
    feature_dtype = torch.float16

    def __init__(self, net: str = "alex", version: str = "0.1", cache_dir: str | Path | None = None,
                 pnet_rand: bool = False, spatial_size: int | None = 64, **kw: Any) -> None:
        super().__init__(**kw)
        import lpips

        if net not in _BACKBONES:
            raise ValueError(f"lpips: unknown backbone {net!r}; expected one of {sorted(_BACKBONES)}")
        if spatial_size is not None and spatial_size < 1:
            raise ValueError(f"lpips: spatial_size must be positive or None, got {spatial_size}")
        self.net_name, self.lpips_version, self.pnet_rand, self.spatial_size = net, version, pnet_rand, spatial_size
        hub_dir = Path(cache_dir) / "hub" if cache_dir is not None else hub.cache_root("torch_hub")
        if not pnet_rand:
            ensure_backbone(net, hub_dir)
        # torchvision looks for the backbone in torch.hub's folder: point it at ours for the load only.
        with hub.torch_hub_dir(hub_dir), hub.weights_only_loads(), warnings.catch_warnings():
            # lpips still calls torchvision's deprecated `pretrained=`; nothing the user can act on.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            model = lpips.LPIPS(net=net, version=version, pnet_rand=pnet_rand, verbose=False)
        self.model = model.to(self.device).eval().requires_grad_(False)
        weights = [lin.model[-1].weight.detach() for lin in self.model.lins]
        if any(bool((w < 0).any()) for w in weights):
            raise ValueError("lpips: negative linear weights; the squared-distance decomposition needs w >= 0")
        #: sqrt(w_lc), shaped (1, C_l, 1, 1) to scale normalised activations.
        self.scales = [w.sqrt().view(1, -1, 1, 1) for w in weights]

    def params(self) -> dict[str, Any]:
        return {**super().params(), "net": self.net_name, "lpips_version": self.lpips_version,
                "pnet_rand": self.pnet_rand, "spatial_size": self.spatial_size}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> RGB in [-1, 1] at :attr:`spatial_size`, the input ``lpips.LPIPS`` expects."""
        x = to_rgb(to_float(images.to(self.device)))
        if self.spatial_size is not None:
            x = resize(x, self.spatial_size)
        return x * 2.0 - 1.0

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        import lpips

        x = self.preprocess(images)
        if self.lpips_version == "0.1":  # v0.0 skipped the input scaling (a bug kept for reproducibility)
            x = self.model.scaling_layer(x)
        parts = []
        for fmap, scale in zip(self.model.net(x), self.scales, strict=True):
            # 1/sqrt(H*W) turns the sum of squared differences into LPIPS's spatial mean.
            part = lpips.normalize_tensor(fmap) * (scale / math.sqrt(fmap.shape[-2] * fmap.shape[-1]))
            parts.append(part.flatten(1))
        return torch.cat(parts, dim=1).cpu()

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(a, b)
