"""The paper's evaluation criteria (Sec. 4.2): C1 identical class, C2 identical attributes,
C3 value rank of out-of-distribution training images, and the motivation t-test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def identical_class_ratio(topk: np.ndarray, train_labels: np.ndarray, generated_labels: np.ndarray,
                          ks: Sequence[int] = (30, 50, 100)) -> pd.Series:
    """C1: rho = Q/k, averaged over generated images, for each k.

    Args:
        topk: (m, K) training indices of each generated image's contributors, nearest first.
        train_labels: (n,) class of each training image.
        generated_labels: (m,) class of each generated image (conditioning class, or a
            classifier's prediction for unconditional generators).
        ks: the k values to report; each must be <= K.

    Returns:
        rho (in [0, 1]) indexed by k.
    """
    topk = np.asarray(topk)
    if max(ks) > topk.shape[1]:
        raise ValueError(f"k={max(ks)} exceeds the {topk.shape[1]} contributors available")
    same = np.asarray(train_labels)[topk] == np.asarray(generated_labels)[:, None]
    return pd.Series({k: float(same[:, :k].mean()) for k in ks}, name="identical_class_ratio")


def identical_attribute_ratio(topk: np.ndarray, train_attributes: pd.DataFrame,
                              generated_attributes: pd.DataFrame, attributes: Sequence[str],
                              ks: Sequence[int] = (5, 10, 15)) -> pd.Series:
    """C2: fraction of contributors that share *all* of ``attributes`` with their generated image.

    One attribute gives Table 3's numbers; several give Table 8's combined attributes.
    """
    cols = list(attributes)
    tr = train_attributes[cols].to_numpy(bool)
    gen = generated_attributes[cols].to_numpy(bool)
    topk = np.asarray(topk)
    same = (tr[topk] == gen[:, None, :]).all(axis=2)
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
