"""Eq. 4-6 and the evaluation criteria on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gmval.attribution import Attribution
from gmval.evaluation import identical_attribute_ratio, identical_class_ratio, one_sided_ttest, value_ranks
from gmval.value import contribution_weights, contributions, data_values, resolve_temperature


def test_weights_are_softmax_of_negative_distance() -> None:
    d = np.array([[0.1, 0.5, 2.0]])
    expected = np.exp(-d) / np.exp(-d).sum()
    np.testing.assert_allclose(contribution_weights(d), expected, rtol=1e-12)


def test_large_distances_do_not_underflow() -> None:
    # exp(-800) is 0 in float64; the row-min shift keeps the ratio exact.
    d = np.array([[800.0, 801.0, 805.0]])
    w = contribution_weights(d)
    np.testing.assert_allclose(w, contribution_weights(d - 800.0), rtol=1e-12)
    assert np.isfinite(w).all() and w[0, 0] > w[0, 1] > w[0, 2]


def test_contributions_sum_to_quality_and_values_aggregate() -> None:
    d = np.array([[0.0, 1.0], [0.5, 0.2]])
    q = np.array([0.8, 0.3])
    c = contributions(d, q)
    np.testing.assert_allclose(c.sum(axis=1), q)
    idx = np.array([[2, 0], [0, 1]])
    phi = data_values(idx, c, n_train=4)
    np.testing.assert_allclose(phi, [c[0, 1] + c[1, 0], c[1, 1], c[0, 0], 0.0])
    assert phi.sum() == pytest.approx(q.sum())


def test_temperature_sharpens_and_auto_uses_median() -> None:
    d = np.array([[0.1, 0.2, 0.4]])
    assert contribution_weights(d, 0.05)[0, 0] > contribution_weights(d, 1.0)[0, 0]
    assert resolve_temperature("auto", d) == pytest.approx(0.2)
    for bad in (0.0, -1.0, float("nan"), "median"):
        with pytest.raises(ValueError):
            resolve_temperature(bad, d)


def test_non_finite_distances_are_reported() -> None:
    with pytest.raises(ValueError, match="1 generated images have non-finite distances"):
        contribution_weights(np.array([[0.1, np.nan], [0.2, 0.3]]))


def test_quality_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="quality has shape"):
        contributions(np.zeros((3, 2)), np.ones(2))


def test_identical_class_ratio() -> None:
    # Each generated image's contributors are its highest-scored training images, highest first.
    scores = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    train_labels = np.array([0, 0, 1, 1])
    rho = identical_class_ratio(Attribution("m", 4, scores), train_labels, np.array([0, 1]), ks=(1, 2, 4))
    assert rho.to_dict() == {1: 1.0, 2: 1.0, 4: 0.5}
    # A sparse result ranks only the images it scored: here image 3 first for generated image 0.
    sparse = Attribution("m", 4, np.array([[0.1, 0.9], [0.5, 0.5]]), index=np.array([[0, 3], [2, 0]]))
    assert identical_class_ratio(sparse, train_labels, np.array([0, 1]), ks=(1, 2)).to_dict() == {1: 0.5, 2: 0.5}
    with pytest.raises(ValueError, match="k=5 must be between 1 and the 4 training images"):
        identical_class_ratio(Attribution("m", 4, scores), train_labels, np.array([0, 1]), ks=(5,))


def test_identical_attribute_ratio_requires_all_attributes() -> None:
    tr = pd.DataFrame({"hat": [1, 1, 0], "glasses": [1, 0, 0]}).astype(bool)
    gen = pd.DataFrame({"hat": [1], "glasses": [1]}).astype(bool)
    scores = Attribution("m", 3, np.array([[0.2, 0.3, 0.1]]))  # contributors 1, 0, 2
    assert identical_attribute_ratio(scores, tr, gen, ["hat"], ks=(1, 3)).to_dict() == pytest.approx({1: 1, 3: 2 / 3})
    assert identical_attribute_ratio(scores, tr, gen, ["hat", "glasses"], ks=(1, 2, 3)).to_dict() == pytest.approx(
        {1: 0.0, 2: 0.5, 3: 1 / 3})


def test_value_ranks_and_ttest() -> None:
    values = np.array([0.5, 0.0, 2.0, 0.0])
    np.testing.assert_allclose(value_ranks(values, np.array([2, 1, 3])), [1.0, 3.5, 3.5])
    rng = np.random.default_rng(0)
    res = one_sided_ttest(rng.normal(1.0, 1, 500), rng.normal(0.0, 1, 500))
    assert res["p_value"] < 1e-10 and res["t_statistic"] > 0
    assert one_sided_ttest(rng.normal(0.0, 1, 500), rng.normal(1.0, 1, 500))["p_value"] > 0.99
