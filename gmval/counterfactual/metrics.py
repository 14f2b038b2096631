"""Statistics of the counterfactual study: the linear datamodeling score (LDS) with its bootstrap interval.

For generated sample j and subset s, an attribution method predicts the model's output as
Σ_{i∈S_s} τ_j(i) and the measurement is the negative loss; LDS_j is their Spearman correlation
over the subsets, and a method's LDS is its mean over the samples (D-TRAK, ICLR 2024).

The bootstrap interval resamples the **subsets and the generated samples jointly** (D-TRAK
resamples its subsets): all samples share the same retrained models, so resampling samples
alone would miss the model-level noise that moves every sample's correlation at once.
Percentile interval, not BCa. A sample whose prediction is constant over the subsets has an
undefined Spearman correlation; it counts as 0 ("predicts nothing") and is reported in
``n_constant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gmval.attribution import Attribution
from gmval.images import ImageSet

if TYPE_CHECKING:
    from gmval.counterfactual.retraining import SubsetTrainer


@dataclass(frozen=True)
class LDSResult:
    """The linear datamodeling score of one attribution method.

    Attributes:
        mean: mean over generated samples of the per-sample Spearman correlation.
        low / high: bootstrap percentile interval of the mean (resampling generated samples).
        per_sample: (m,) Spearman correlation of each generated sample (0 where undefined).
        n_subsets: subsets (retrained models) the correlations run over.
        n_constant: samples whose prediction was constant over the subsets (counted as 0).
        confidence: the interval's level.
        n_boot: bootstrap resamples.
    """

    mean: float
    low: float
    high: float
    per_sample: np.ndarray
    n_subsets: int
    n_constant: int
    confidence: float
    n_boot: int

    def row(self) -> dict[str, float | int]:
        """The scalar fields, for a results table."""
        return {"lds": self.mean, "low": self.low, "high": self.high, "n_subsets": self.n_subsets,
                "n_samples": len(self.per_sample), "n_constant": self.n_constant}


def _spearman_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman correlation of each column pair of (s, m) arrays, and which columns were constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    denom = np.sqrt((ra ** 2).sum(axis=0) * (rb ** 2).sum(axis=0))
    constant = denom == 0
    rho = np.where(constant, 0.0, (ra * rb).sum(axis=0) / np.where(constant, 1.0, denom))
    return rho, constant


def lds(scores: np.ndarray, masks: np.ndarray, losses: np.ndarray, n_boot: int = 1000, seed: int = 0,
        confidence: float = 0.95) -> LDSResult:
    """Linear datamodeling score (D-TRAK) of an attribution, with a bootstrap interval.

    For generated sample j and subset s, the prediction is Σ_{i∈S_s} scores[j, i] and the
    measurement is ``-losses[s, j]`` (higher = the model explains sample j better), so a
    method whose high scores mark helpful images gets a positive LDS. LDS_j is the Spearman
    correlation over the subsets; the result is its mean over samples. The interval is a
    percentile bootstrap that resamples the subsets and the generated samples with
    replacement, jointly, ``n_boot`` times.

    Args:
        scores: (m, n) attribution scores, higher = helps produce sample j.
        masks: (s, n) bool subsets (from :func:`random_subsets`), in the scores' training order.
        losses: (s, m) loss of sample j under the model trained on subset s.
        n_boot: bootstrap resamples.
        seed: seeds the bootstrap.
        confidence: level of the interval.

    Raises:
        ValueError: for mismatched shapes, non-bool masks, fewer than 3 subsets, non-finite
            scores or losses, n_boot < 1, or a confidence outside (0, 1); the message names
            the offending argument.
    """
    scores, masks, losses = np.asarray(scores, dtype=np.float64), np.asarray(masks), np.asarray(losses, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (m generated, n train), got shape {scores.shape}")
    m, n = scores.shape
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be (n_subsets, {n}) to match scores {scores.shape}, got {masks.shape}")
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean, got {masks.dtype}")
    s = masks.shape[0]
    if s < 3:
        raise ValueError(f"LDS needs at least 3 subsets for a rank correlation, got {s}")
    if losses.shape != (s, m):
        raise ValueError(f"losses must be (n_subsets, m generated) = {(s, m)}, got {losses.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    if not np.isfinite(losses).all():
        raise ValueError(f"losses hold {int((~np.isfinite(losses)).sum())} NaN or infinite values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    predicted = masks.astype(np.float64) @ scores.T  # (s, m)
    rho, constant = _spearman_columns(predicted, -losses)
    rng = np.random.default_rng(seed)
    # Subsets and samples are resampled together: every sample is measured on the same
    # retrained models, so a model that is better or worse for all samples at once moves all
    # per-sample correlations alike, and resampling samples alone would hide that variance.
    boot = np.empty(n_boot)
    for b in range(n_boot):
        rows, cols = rng.integers(0, s, size=s), rng.integers(0, m, size=m)
        boot[b] = _spearman_columns(predicted[rows][:, cols], -losses[rows][:, cols])[0].mean()
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return LDSResult(mean=float(rho.mean()), low=float(low), high=float(high), per_sample=rho, n_subsets=s,
                     n_constant=int(constant.sum()), confidence=confidence, n_boot=n_boot)


def lds_table(methods: Mapping[str, Attribution], settings: Mapping[str, tuple[str, str]], masks: np.ndarray,
              losses: np.ndarray, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One :func:`lds` row per method: ``method``, ``distance``, ``quality`` and :meth:`LDSResult.row`.

    Args:
        methods: label -> the method's attribution of the generated samples, on the masks' training set.
        settings: label -> (distance, quality) descriptions; a label missing here gets ("-", "none").
        masks / losses / n_boot / seed: as :func:`lds` (the same bootstrap seed for every method).

    Raises:
        ValueError: for an attribution of another training set size than the masks', or as :func:`lds`.
    """
    rows = []
    for label, attribution in methods.items():
        if attribution.n_train != masks.shape[1]:
            raise ValueError(f"{label}: the attribution scores {attribution.n_train} training images, the masks "
                             f"{masks.shape[1]}")
        dist_name, q_name = settings.get(label, ("-", "none"))
        res = lds(attribution.matrix(), masks, losses, n_boot=n_boot, seed=seed)
        rows.append({"method": label, "distance": dist_name, "quality": q_name, **res.row()})
    return pd.DataFrame(rows)


def seed_agreement(trainer: SubsetTrainer, masks: np.ndarray, generated: ImageSet, draws: int,
                   loss_seed: int) -> np.ndarray | None:
    """Per-sample Spearman correlation, over the subsets, of the losses under the first two training seeds.

    If two seeds order the subsets alike, that order is a property of the subsets, which an
    attribution method can predict; the mean roughly bounds the LDS reachable at this level of
    training noise. None with a single training seed.

    Returns:
        (m,) correlations (NaN where one seed's losses are constant over the subsets), or None.
    """
    if len(trainer.seeds) < 2:
        return None
    a, b = (np.stack(trainer.model_losses([(mask, s) for mask in masks], generated, draws, loss_seed))
            for s in trainer.seeds[:2])
    rho, constant = _spearman_columns(a, b)
    return np.where(constant, np.nan, rho)
