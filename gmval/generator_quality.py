"""Notebook 00's generator table (:func:`gmval.models.zoo.quality` reports with the quality gate's
columns), and which samples of an unconditional generator are confidently labelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gmval.images import ImageSet
from gmval.models import zoo
from gmval.models.fid import confident_mask
from gmval.models.zoo import BLUR_SIGMAS
from gmval.profiles import Profile
from gmval.verdicts import GATE, gate_table, is_conditional


def confident_share(logits: np.ndarray, threshold: float = GATE.confident_softmax) -> float:
    """Share of samples whose classifier max-softmax is at least ``threshold``."""
    return float(confident_mask(logits, threshold).mean())


def blur_column(sigma: float) -> str:
    return f"fd_blur_{sigma:g}"


def quality_table(reports: pd.DataFrame, profile: Profile = "default") -> pd.DataFrame:
    """``reports`` (one :func:`zoo.quality` dict per row) with the measures and the gate's columns.

    Adds ``fd_ratio``, ``gate`` and ``gate_reasons`` (:func:`gmval.verdicts.gate_table`) and puts
    the gate's inputs first.
    """
    table = gate_table(reports)
    first = ["generator", "dataset", "samples", "fd", "fd_real", "fd_ratio", *map(blur_column, BLUR_SIGMAS),
             "class_accuracy", "class_accuracy_real", "confident_share", "confident_share_real", "class_count_ratio",
             "class_count_ratio_real", "gate", "gate_reasons"]
    first = [c for c in first if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def confident_samples(name: str, generated: ImageSet, profile: Profile = "default") -> np.ndarray | None:
    """Which of ``name``'s samples its dataset's classifier labels confidently; None for a conditional generator.

    An unconditional sample's class is the classifier's label (:func:`zoo.sample`), so C1 is
    also reported on the samples whose label is confident (max-softmax >= the gate's threshold).
    """
    if is_conditional(name):
        return None
    classifier = zoo.get_classifier(zoo.dataset_of(name, profile), profile, progress=False)[0]
    return confident_mask(classifier.logits(generated), GATE.confident_softmax)
