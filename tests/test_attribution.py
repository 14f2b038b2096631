"""The one attribution interface: the Attribution result's checks and views, and every registered method on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

from gmval.attribution import Attribution, create_attributor, list_attributors
from gmval.baselines.trak import VAELoss
from gmval.images import ImageSet
from gmval.models.training import TrainConfig
from gmval.models.vae import VAEConfig, train_vae

# --------------------------------------------------------------------------- the result type


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"scores": np.zeros(4)}, "must be 2-D"),
    ({"scores": np.array([[0.0, np.nan, 1.0, np.inf]])}, "2 NaN or infinite"),
    ({"scores": np.zeros((2, 3))}, "dense scores have 3 columns for 4 training images"),
    ({"scores": np.zeros((2, 3)), "index": np.zeros((2, 2), dtype=int)}, r"index has shape \(2, 2\)"),
    ({"scores": np.zeros((1, 2)), "index": np.array([[0, 4]])}, "training index 4 outside 0..3"),
    ({"scores": np.zeros((1, 2)), "index": np.array([[-1, 2]])}, "training index -1 outside 0..3"),
    ({"scores": np.zeros((1, 4)), "values": np.zeros(3)}, r"values have shape \(3,\), expected \(4,\)"),
])
def test_attribution_rejects_inconsistent_results(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Attribution("m", 4, **kwargs)


def test_dense_attribution_values_matrix_and_top_k() -> None:
    scores = np.array([[0.5, 2.0, 2.0, -1.0],
                       [3.0, 0.0, 1.0, 3.0]])
    a = Attribution("m", 4, scores)
    assert a.n_generated == 2 and a.scores.dtype == np.float64
    np.testing.assert_array_equal(a.values, [3.5, 2.0, 3.0, 2.0])  # summed over generated images
    np.testing.assert_array_equal(a.matrix(), scores)
    a.matrix()[0, 0] = 99.0  # a copy: the result stays as made
    assert a.scores[0, 0] == 0.5
    # Highest first; equal scores keep the training order (a stable sort).
    np.testing.assert_array_equal(a.top_k(3), [[1, 2, 0], [0, 3, 2]])
    np.testing.assert_array_equal(a.top_k(1), [[1], [0]])
    for k in (0, 5):
        with pytest.raises(ValueError, match=f"k={k} must be between 1 and the 4 training images m scores"):
            a.top_k(k)
    explicit = Attribution("m", 4, scores, values=np.arange(4.0))
    np.testing.assert_array_equal(explicit.values, [0.0, 1.0, 2.0, 3.0])


def test_sparse_attribution_fills_the_others_with_zero() -> None:
    # Two generated images, three scored training images each, in the method's order.
    index = np.array([[4, 1, 2],
                      [0, 4, 3]])
    scores = np.array([[0.2, 0.5, 0.2],
                       [1.0, 0.25, -0.5]])
    a = Attribution("m", 6, scores, index=index)
    np.testing.assert_array_equal(a.matrix(), [[0.0, 0.5, 0.2, 0.0, 0.2, 0.0],
                                               [1.0, 0.0, 0.0, -0.5, 0.25, 0.0]])
    np.testing.assert_array_equal(a.values, [1.0, 0.5, 0.2, -0.5, 0.45, 0.0])
    # Only the scored images are ranked: a negative score is kept, not beaten by the zeros of the others,
    # and the tie of images 4 and 2 keeps the method's order (4 first).
    np.testing.assert_array_equal(a.top_k(3), [[1, 4, 2], [0, 4, 3]])
    with pytest.raises(ValueError, match="k=4 must be between 1 and the 3 training images"):
        a.top_k(4)


def test_subset_values_only_the_chosen_generated_images() -> None:
    index = np.array([[4, 1, 2],
                      [0, 4, 3],
                      [1, 1, 5]])
    scores = np.array([[0.2, 0.5, 0.2],
                       [1.0, 0.25, -0.5],
                       [2.0, 1.0, 3.0]])
    a = Attribution("m", 6, scores, index=index)
    part = a.subset(np.array([2, 0]))
    np.testing.assert_array_equal(part.index, index[[2, 0]])
    np.testing.assert_array_equal(part.values, [0.0, 3.5, 0.2, 0.0, 0.2, 3.0])
    # The parts add up to the whole.
    np.testing.assert_allclose(part.values + a.subset(np.array([1])).values, a.values)
    dense = Attribution("d", 2, np.array([[1.0, 2.0], [4.0, 8.0]]))
    np.testing.assert_array_equal(dense.subset(np.array([1])).values, [4.0, 8.0])
    with pytest.raises(ValueError, match=r"generated positions must lie in 0\.\.2"):
        a.subset(np.array([3]))
    with pytest.raises(ValueError, match="its values are not its summed scores"):
        Attribution("e", 2, np.ones((1, 2)), values=np.zeros(2)).subset(np.array([0]))


def test_attribution_saves_scores_index_and_config(tmp_path: Path) -> None:
    a = Attribution("m", 3, np.array([[0.5, 1.5]]), index=np.array([[2, 0]]), timings={"total": 1.5},
                    config={"k": 2, "path": tmp_path})
    files = a.save(tmp_path / "out")
    saved = np.load(files["scores"])
    np.testing.assert_array_equal(saved["scores"], a.scores)
    np.testing.assert_array_equal(saved["index"], a.index)
    np.testing.assert_array_equal(saved["values"], [1.5, 0.0, 0.5])
    meta = json.loads(files["config"].read_text())
    assert meta == {"method": "m", "n_train": 3, "config": {"k": 2, "path": str(tmp_path)}, "timings": {"total": 1.5}}
    dense = np.load(Attribution("d", 2, np.ones((1, 2))).save(tmp_path / "dense")["scores"])
    assert "index" not in dense.files


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown attribution method 'nope'; available: gmvaluator, if4gan, pixel"):
        create_attributor("nope")


# --------------------------------------------------------------------------- every method, one interface

@pytest.fixture(scope="module")
def train(digits16: ImageSet) -> ImageSet:
    return digits16.subset(range(64), "attr-train")


@pytest.fixture(scope="module")
def generated(digits16: ImageSet) -> ImageSet:
    return ImageSet(digits16.images[500:505].clone(), np.arange(5), digits16.labels[500:505], name="attr-gen")


@pytest.fixture(scope="module")
def vae_run(train: ImageSet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """A tiny β-VAE trained for 8 steps, keeping snapshots (VAE-TracIn) and returning the model (TRAK)."""
    folder = tmp_path_factory.mktemp("attr-vae")
    model, _ = train_vae(train, folder, VAEConfig(1, 16, latent_dim=4, hidden=16),
                         TrainConfig(epochs=2, batch_size=16, seed=0, checkpoint_seconds=0, keep_every=4),
                         lr=3e-3, progress=False)
    return folder, model


#: name -> (settings, the model fit() takes, given the VAE run); IF4GAN replays a zoo GAN's own
#: training steps, so it is run on the tiny zoo of tests/test_baselines_if4gan.py instead.
CASES: dict[str, tuple[dict[str, Any], Callable[[tuple[Path, nn.Module]], Any]]] = {
    "gmvaluator": ({"encoder": "pixels", "k": 4, "cache_dir": None, "progress": False}, lambda run: None),
    "pixel": ({}, lambda run: None),
    "random-scores": ({"seed": 3}, lambda run: None),
    "vae-tracin": ({"draws": 1, "cache_dir": None, "progress": False, "device": "cpu"}, lambda run: run[0]),
    "trak": ({"loss": VAELoss(draws=1), "projection_dim": 8, "cache_dir": None, "progress": False, "device": "cpu"},
             lambda run: run[1]),
}
ELSEWHERE = {"if4gan"}


def test_every_registered_method_has_a_case() -> None:
    assert set(list_attributors()) == set(CASES) | ELSEWHERE


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_method_scores_through_the_interface(name: str, train: ImageSet, generated: ImageSet,
                                                   vae_run: tuple[Path, nn.Module]) -> None:
    settings, model = CASES[name]
    attributor = create_attributor(name, **settings)
    assert attributor.method == name
    result = attributor.fit(train, model(vae_run)).score(generated)
    assert isinstance(result, Attribution) and result.method == name
    assert (result.n_generated, result.n_train) == (5, 64)
    dense = result.matrix()
    assert dense.shape == (5, 64) and np.isfinite(dense).all() and np.abs(dense).sum() > 0
    assert result.values.shape == (64,) and np.isfinite(result.values).all()
    top = result.top_k(4)
    assert top.shape == (5, 4) and ((top >= 0) & (top < 64)).all()
    assert all(len(set(row)) == 4 for row in top)
    # The top-k are the highest of each row of the dense matrix.
    picked = np.take_along_axis(dense, top, axis=1)
    assert (np.diff(picked, axis=1) <= 0).all()
    if result.index is None:
        assert (picked[:, -1:] >= np.sort(dense, axis=1)[:, -4:-3]).all()


def test_building_a_method_needs_no_model(vae_run: tuple[Path, nn.Module], generated: ImageSet) -> None:
    # Settings alone; the model comes with fit(), and scoring before it is an error.
    for name, (settings, _) in CASES.items():
        with pytest.raises(RuntimeError, match="call fit"):
            create_attributor(name, **settings).score(generated)
