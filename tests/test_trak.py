"""TRAK: the score formula, its sign against exact leave-one-out retraining, streaming, caching, real models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from gmval.attribution import Attribution
from gmval.baselines import trak as trak_module
from gmval.baselines.trak import TRAK, DiffusionLoss, VAELoss, trak_scores
from gmval.images import ImageSet
from gmval.models.diffusion import DiffusionConfig, train_diffusion
from gmval.models.training import TrainConfig
from gmval.models.vae import VAEConfig, train_vae

# --------------------------------------------------------------------------- the formula


def test_trak_scores_follow_the_ridge_formula() -> None:
    rng = np.random.default_rng(0)
    phi, psi = rng.standard_normal((40, 8)), rng.standard_normal((5, 8))
    gram = phi.T @ phi
    lam = 0.1 * np.trace(gram) / 8
    expected = psi @ np.linalg.inv(gram + lam * np.eye(8)) @ phi.T
    np.testing.assert_allclose(trak_scores(phi, psi, ridge=0.1), expected, rtol=1e-10)
    # The ridge is relative: rescaling the features rescales the scores only through psi and phi.
    np.testing.assert_allclose(trak_scores(3.0 * phi, psi, ridge=0.1), expected / 3.0, rtol=1e-10)
    with pytest.raises(ValueError, match="one dim"):
        trak_scores(phi, psi[:, :4])
    with pytest.raises(ValueError, match="ridge"):
        trak_scores(phi, psi, ridge=0.0)
    bad = phi.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trak_scores(bad, psi)


# --------------------------------------------------------------------------- a problem with a known answer

@dataclass(frozen=True)
class SquaredError:
    """Least squares on the pixels of 1x2x2 "images", the class label as the regression target."""

    conditional: ClassVar[bool] = True

    def params(self) -> dict[str, Any]:
        return {"loss": "squared-error"}

    def noise(self, model: nn.Module, stream: int, positions: np.ndarray) -> torch.Tensor:
        return torch.zeros(len(positions), 1)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (model(x.flatten(1))[:, 0] - y.to(x.dtype)).pow(2)


def _regression(n: int, m: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n + m, 1, 2, 2), dtype=np.uint8)
    x = pixels.reshape(n + m, 4) / 255.0
    y = np.clip(np.round(x @ np.array([9.0, -4.0, 6.0, 3.0]) + 5.0 + rng.normal(0, 1.5, n + m)), 0, None)
    images = torch.from_numpy(pixels)
    train = ImageSet(images[:n], np.arange(n), y[:n].astype(np.int64), name="reg-train")
    queries = ImageSet(images[n:], np.arange(m), y[n:].astype(np.int64), name="reg-queries")
    return train, queries


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def test_trak_predicts_exact_leave_one_out_retraining_of_least_squares() -> None:
    train, queries = _regression(80, 6)
    x, y = train.images.reshape(80, 4).double().numpy() / 255.0, train.labels.astype(np.float64)
    xq, yq = queries.images.reshape(6, 4).double().numpy() / 255.0, queries.labels.astype(np.float64)
    theta = _least_squares(x, y)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(theta[None, :4]))
        model.bias.copy_(torch.tensor(theta[4:]))

    def query_loss(t: np.ndarray) -> np.ndarray:
        return (xq @ t[:4] + t[4] - yq) ** 2

    # The truth: how much each query's loss rises when image i is left out and the model refitted.
    keep = ~np.eye(80, dtype=bool)
    truth = np.stack([query_loss(_least_squares(x[keep[i]], y[keep[i]])) for i in range(80)], axis=1)
    truth -= query_loss(theta)[:, None]
    scores = TRAK(SquaredError(), projection_dim=32, ridge=1e-6, cache_dir=None, progress=False,
                  device="cpu").fit(train, model).score(queries).matrix()
    assert scores.shape == (6, 80)
    rho = [spearmanr(scores[j], truth[j])[0] for j in range(6)]
    # Positive score = removal raises the loss: the same sign as the truth, per query.
    assert min(rho) > 0.8, rho
    assert np.mean(np.sign(scores) == np.sign(truth)) > 0.9


# --------------------------------------------------------------------------- real models

@pytest.fixture(scope="module")
def small(digits16: ImageSet) -> tuple[ImageSet, ImageSet]:
    train = digits16.subset(range(120), "trak-train")
    queries = ImageSet(digits16.images[300:305].clone(), np.arange(5), digits16.labels[300:305], name="trak-q")
    return train, queries


@pytest.fixture(scope="module")
def vae(small: tuple[ImageSet, ImageSet], tmp_path_factory: pytest.TempPathFactory) -> nn.Module:
    model, _ = train_vae(small[0], tmp_path_factory.mktemp("vae"), VAEConfig(1, 16, latent_dim=4, hidden=16),
                         TrainConfig(epochs=1, batch_size=16, seed=0), lr=3e-3, progress=False,
                         device=torch.device("cpu"))
    return model


def _diffusion(train: ImageSet, folder: Path, seed: int) -> nn.Module:
    cfg = DiffusionConfig(1, 16, 10, block_out_channels=(8, 16), attention=(False, False),
                          beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    model, _ = train_diffusion(train, folder, cfg, TrainConfig(epochs=1, batch_size=16, seed=seed), lr=2e-3,
                               ema_decay=0.9, progress=False, device=torch.device("cpu"))
    return model


@pytest.fixture
def gradient_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch size of every per-sample-gradient call TRAK makes."""
    calls: list[int] = []
    original = trak_module.per_sample_gradients

    def counted(objective: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        calls.append(len(inputs[0]))
        return original(objective, *inputs)

    monkeypatch.setattr(trak_module, "per_sample_gradients", counted)
    return calls


def test_training_gradients_are_streamed_in_chunks(small: tuple[ImageSet, ImageSet], vae: nn.Module,
                                                   gradient_calls: list[int]) -> None:
    train, queries = small
    streamed = TRAK(VAELoss(draws=2), projection_dim=16, chunk_size=32, cache_dir=None, progress=False,
                    device="cpu").fit(train, [vae]).score(queries).scores
    # Never more than one chunk of per-parameter gradients at once: 120 training images as 32+32+32+24.
    assert gradient_calls == [32, 32, 32, 24, 5]
    gradient_calls.clear()
    whole = TRAK(VAELoss(draws=2), projection_dim=16, chunk_size=500, cache_dir=None, progress=False,
                 device="cpu").fit(train, [vae]).score(queries).scores
    assert gradient_calls == [120, 5]
    np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=1e-8)


def test_vae_trak_result_is_cached_and_dense(small: tuple[ImageSet, ImageSet], vae: nn.Module,
                                             tmp_path: Path, gradient_calls: list[int]) -> None:
    train, queries = small
    trak = TRAK(VAELoss(draws=2), projection_dim=16, cache_dir=tmp_path, progress=False, device="cpu")
    result = trak.fit(train, vae).score(queries)
    assert isinstance(result, Attribution) and result.method == "trak" and result.index is None
    assert result.scores.shape == (5, 120) and np.isfinite(result.scores).all()
    np.testing.assert_array_equal(result.matrix(), result.scores)
    np.testing.assert_array_equal(result.top_k(10)[0], np.argsort(-result.scores[0], kind="stable")[:10])
    assert sum(gradient_calls) == 125
    gradient_calls.clear()
    again = TRAK(VAELoss(draws=2), projection_dim=16, cache_dir=tmp_path, progress=False,
                 device="cpu").fit(train, vae).score(queries).scores
    assert gradient_calls == []  # both feature sets came from the cache
    np.testing.assert_allclose(again, result.scores)
    # Other noise is another loss: recomputed, and different.
    other = TRAK(VAELoss(draws=2, seed=1), projection_dim=16, cache_dir=tmp_path, progress=False,
                 device="cpu").fit(train, vae).score(queries).scores
    assert gradient_calls and not np.allclose(other, again)


def test_diffusion_trak_ensembles_models_and_needs_labels(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    train, queries = small
    models = [_diffusion(train, tmp_path / f"seed{s}", s) for s in (0, 1)]
    loss = DiffusionLoss(timesteps=3, draws=1)
    singles = [TRAK(loss, projection_dim=32, cache_dir=tmp_path / "cache", progress=False,
                    device="cpu").fit(train, m).score(queries).scores for m in models]
    assert all(s.shape == (5, 120) and np.isfinite(s).all() for s in singles)
    assert not np.allclose(singles[0], singles[1])  # the seeds gave different models
    both = TRAK(loss, projection_dim=32, cache_dir=tmp_path / "cache", progress=False,
                device="cpu").fit(train, models).score(queries).scores
    np.testing.assert_allclose(both, (singles[0] + singles[1]) / 2)
    unlabelled = ImageSet(queries.images, queries.ids, name="no-labels")
    with pytest.raises(ValueError, match="no labels"):
        TRAK(loss, projection_dim=8, cache_dir=None, progress=False).fit(train, models[:1]).score(unlabelled)


def test_trak_rejects_bad_settings(small: tuple[ImageSet, ImageSet], vae: nn.Module) -> None:
    train, queries = small
    with pytest.raises(ValueError, match="at least one"):
        TRAK(VAELoss()).fit(train, [])
    with pytest.raises(ValueError, match="at least one"):
        TRAK(VAELoss()).fit(train)
    with pytest.raises(ValueError, match="projection_dim"):
        TRAK(VAELoss(), projection_dim=0)
    with pytest.raises(ValueError, match="ridge"):
        TRAK(VAELoss(), ridge=-1.0)
    with pytest.raises(ValueError, match="parameter counts"):
        TRAK(VAELoss()).fit(train, [vae, nn.Linear(2, 2)])
    with pytest.raises(RuntimeError, match="call fit"):
        TRAK(VAELoss()).score(queries)
    with pytest.raises(ValueError, match="draws"):
        VAELoss(draws=0)
    with pytest.raises(ValueError, match="timesteps"):
        DiffusionLoss(timesteps=0)
    with pytest.raises(ValueError, match="k=121"):
        TRAK(VAELoss(draws=1), projection_dim=8, cache_dir=None, progress=False).fit(train, vae).score(
            queries).top_k(121)
