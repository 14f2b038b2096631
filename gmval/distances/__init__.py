"""Re-ranking distances chosen by name: ``create_distance("l2")``."""

from __future__ import annotations

from typing import Any

from gmval.distances.base import Distance
from gmval.registry import Registry

DISTANCES: Registry[Distance] = Registry("distance")


@DISTANCES.register("none", "No-Rerank: Euclidean distance between the recall embeddings")
def _none(**kw: Any) -> Distance:
    from gmval.distances.base import EmbeddingDistance

    return EmbeddingDistance(**kw)


@DISTANCES.register("l2", "root-mean-square pixel difference (the paper's l2-distance)")
def _l2(**kw: Any) -> Distance:
    from gmval.distances.pixel import PixelL2

    return PixelL2(**kw)


@DISTANCES.register("shift-l2", "pixel RMS difference after standardising, minimised over small shifts (near-copies)")
def _shift_l2(**kw: Any) -> Distance:
    from gmval.distances.pixel import ShiftTolerantL2

    return ShiftTolerantL2(**kw)


@DISTANCES.register("ssim", "1 - SSIM on luma")
def _ssim(**kw: Any) -> Distance:
    from gmval.distances.pixel import SSIMDistance

    return SSIMDistance(**kw)


@DISTANCES.register("effnet-features",
                    "unweighted LPIPS-style distance on EfficientNet-Lite0 maps (offline; not LPIPS)")
def _effnet(**kw: Any) -> Distance:
    from gmval.distances.deep import EfficientNetFeatureDistance

    return EfficientNetFeatureDistance(**kw)


@DISTANCES.register("lpips", "LPIPS (Zhang et al. 2018), real package; backbone weights from torchvision")
def _lpips(**kw: Any) -> Distance:
    from gmval.distances.lpips import LPIPSDistance

    return LPIPSDistance(**kw)


@DISTANCES.register("dreamsim", "DreamSim (Fu et al. 2023), real package; weights from its release")
def _dreamsim(**kw: Any) -> Distance:
    from gmval.distances.dreamsim import DreamSimDistance

    return DreamSimDistance(**kw)


def list_distances() -> list[str]:
    """Names accepted by :func:`create_distance`."""
    return DISTANCES.names()


def create_distance(name: str, **kw: Any) -> Distance:
    """Build the distance registered as ``name``."""
    return DISTANCES.create(name, **kw)


__all__ = ["DISTANCES", "Distance", "create_distance", "list_distances"]
