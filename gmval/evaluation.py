"""The paper's evaluation criteria (Sec. 4.2): C1 identical class, C2 identical attributes,
C3 value rank of out-of-distribution training images, and the motivation t-test.

C1-C3 take an :class:`~gmval.attribution.Attribution`, so every method (GMValuator and the
baselines alike) is judged from the same result."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from gmval.attribution import Attribution
from gmval.encoders import Encoder
from gmval.images import ImageSet
from gmval.recall import RecallConfig
from gmval.valuator import Valuator


def _same_class_share(topk: np.ndarray, train_labels: np.ndarray, generated_labels: np.ndarray,
                      ks: Sequence[int]) -> pd.Series:
    same = np.asarray(train_labels)[topk] == np.asarray(generated_labels)[:, None]
    return pd.Series({k: float(same[:, :k].mean()) for k in ks}, name="identical_class_ratio")


def identical_class_ratio(attribution: Attribution, train_labels: np.ndarray, generated_labels: np.ndarray,
                          ks: Sequence[int] = (30, 50, 100)) -> pd.Series:
    """C1: rho = Q/k, averaged over generated images, for each k.

    Args:
        attribution: any method's scores of the training images for the generated images;
            each generated image's top k (:meth:`~gmval.attribution.Attribution.top_k`) are its contributors.
        train_labels: (n,) class of each training image.
        generated_labels: (m,) class of each generated image (conditioning class, or a
            classifier's prediction for unconditional generators).
        ks: the k values to report.

    Returns:
        rho (in [0, 1]) indexed by k.

    Raises:
        ValueError: for a k beyond the training images the method scores per generated image.
    """
    return _same_class_share(attribution.top_k(max(ks)), train_labels, generated_labels, ks)


def identical_attribute_ratio(attribution: Attribution, train_attributes: pd.DataFrame,
                              generated_attributes: pd.DataFrame, attributes: Sequence[str],
                              ks: Sequence[int] = (5, 10, 15)) -> pd.Series:
    """C2: fraction of the top-k contributors that share *all* of ``attributes`` with their generated image.

    One attribute gives Table 3's numbers; several give Table 8's combined attributes.
    """
    cols = list(attributes)
    tr = train_attributes[cols].to_numpy(bool)
    gen = generated_attributes[cols].to_numpy(bool)
    same = (tr[attribution.top_k(max(ks))] == gen[:, None, :]).all(axis=2)
    return pd.Series({k: float(same[:, :k].mean()) for k in ks}, name="+".join(cols))


def value_ranks(values: np.ndarray, which: np.ndarray) -> np.ndarray:
    """C3: rank (1 = highest value) of the training images at positions ``which``.

    Ties share the mean rank, so images that no generated image picked (value 0) are
    not ordered by an arbitrary tie-break.
    """
    ranks = stats.rankdata(-np.asarray(values, dtype=np.float64), method="average")
    return ranks[np.asarray(which)]


def one_sided_ttest(trained: np.ndarray, untrained: np.ndarray) -> dict[str, float]:
    """Motivation test (Table 6): H1 = values of the trained half exceed those of the untrained half.

    Welch's t-test (unequal variances), one-sided.
    """
    res = stats.ttest_ind(trained, untrained, equal_var=False, alternative="greater")
    return {"mean_trained": float(np.mean(trained)), "mean_untrained": float(np.mean(untrained)),
            "t_statistic": float(res.statistic), "p_value": float(res.pvalue)}


def c3_metrics(attribution: Attribution, noisy: np.ndarray) -> dict[str, float]:
    """C3 (Figs. 5, 9): how well the values separate the noisy training images from the clean ones.

    Args:
        attribution: any method's scores; its ``values`` (one per training image) are ranked.
        noisy: training positions of the noisy (out-of-distribution) images.

    Returns:
        ``auroc``: probability that a clean image has a higher value than a noisy one (ties
        count half, so a ranking that ties every noisy image with most clean ones at 0 scores
        near 0.5, not 1); ``clean_zero_share``: share of clean images with value 0;
        ``noisy_bottom_decile``: share of noisy images whose (tie-averaged) rank lies in the
        lowest 10 % of the values; ``noisy_mean_rank_pct`` / ``clean_mean_rank_pct``: mean
        rank as a percentage of n (100 = lowest); ``noisy_with_value``: noisy images with a
        value above 0 (some generated image's contributor).
    """
    values = attribution.values
    n = len(values)
    is_noisy = np.zeros(n, bool)
    is_noisy[np.asarray(noisy)] = True
    if is_noisy.all() or not is_noisy.any():
        raise ValueError("C3 needs both noisy and clean images")
    ranks = value_ranks(values, np.arange(n))
    clean = ~is_noisy
    return {"auroc": float(roc_auc_score(clean, values)),
            "clean_zero_share": float(np.mean(values[clean] == 0)),
            "noisy_bottom_decile": float(np.mean(ranks[is_noisy] > 0.9 * n)),
            "noisy_mean_rank_pct": 100 * float(np.mean(ranks[is_noisy])) / n,
            "clean_mean_rank_pct": 100 * float(np.mean(ranks[clean])) / n,
            "noisy_with_value": int(np.sum(values[is_noisy] > 0))}


def c1_table(attribution: Attribution, train_labels: np.ndarray, generated_labels: np.ndarray, ks: Sequence[int],
             confident: np.ndarray | None = None) -> pd.DataFrame:
    """C1 per k, in %: ``ours`` on every generated image, and, where a mask of the confidently
    labelled ones is given (unconditional generators), ``ours_confident`` on those and their
    ``confident_share``."""
    topk, generated_labels = attribution.top_k(max(ks)), np.asarray(generated_labels)
    rho = _same_class_share(topk, train_labels, generated_labels, ks)
    table = pd.DataFrame({"k": list(ks), "ours": 100 * rho.to_numpy()})
    if confident is not None:
        confident = np.asarray(confident, bool)
        table["confident_share"] = float(confident.mean())
        table["ours_confident"] = (100 * _same_class_share(topk[confident], train_labels,
                                                           generated_labels[confident], ks).to_numpy()
                                   if confident.any() else np.nan)
    return table


def recalled_identical_class(encoder: Encoder, train: ImageSet, generated: ImageSet,
                             recall: RecallConfig | dict[str, object], recall_k: int, k: int,
                             distance: str = "l2") -> float:
    """C1 ρ (a fraction) at ``k`` when ``recall_k`` candidates come from index ``recall`` and are re-ranked.

    App. P's question: does an approximate index change GMValuator's result? The paper
    re-ranks by l2, so a recall miss matters only where it drops a true top-k contributor.
    """
    v = Valuator(encoder, distance, k=k, recall_k=recall_k, recall=recall, progress=False).fit(train)
    return float(identical_class_ratio(v.score(generated), train.labels, generated.labels, ks=(k,))[k])
