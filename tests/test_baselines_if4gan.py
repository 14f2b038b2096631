"""IF4GAN: the adjoint estimate against actual counterfactual replays, caching, bad input.

A tiny DCGAN (8x8 digits, float64 so that changes of 1e-12 are measurable) is briefly
trained with Adam, then a window of plain SGD steps is traced. The metric is log-IS of a
nearest-class-mean classifier, which needs no training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gmval.attribution import create_attributor
from gmval.baselines import if4gan
from gmval.baselines.if4gan import (
    IF4GAN,
    EvalMetric,
    TraceWindow,
    if4gan_influence,
    log_inception_score,
    replay_metric,
)
from gmval.data import load_digits
from gmval.images import ImageSet, to_float
from gmval.models import zoo
from gmval.models.gan import DCGANDiscriminator, DCGANGenerator, GANConfig, GANTask
from gmval.models.training import TrainConfig, seeded_init, train
from gmval.profiles import get_profile

CLEAN, NOISY, BATCH = 30, 6, 4


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return load_digits()


@pytest.fixture(scope="module")
def planted(digits: ImageSet) -> ImageSet:
    """30 digits followed by 6 uniform-noise images (positions 30..35), the planted harmful ones."""
    noise = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (NOISY, 1, 8, 8), dtype=np.uint8))
    return ImageSet(torch.cat([digits.images[:CLEAN], noise]), np.arange(100, 100 + CLEAN + NOISY), name="planted")


@pytest.fixture(scope="module")
def gan(planted: ImageSet, tmp_path_factory: pytest.TempPathFactory) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The tiny pair after 3 Adam epochs (so that V is away from its minimum), in float64."""
    config = GANConfig(1, 8, z_dim=8, hidden=32)
    g = seeded_init(0, lambda: DCGANGenerator(config))
    d = seeded_init(1, lambda: DCGANDiscriminator(config))
    train(GANTask(g, d, lr=2e-3), planted, TrainConfig(epochs=3, batch_size=BATCH), tmp_path_factory.mktemp("gan"),
          {}, progress=False)
    return g.double(), d.double()


@pytest.fixture(scope="module")
def metric(digits: ImageSet) -> EvalMetric:
    assert digits.labels is not None
    means = torch.stack([to_float(digits.images[digits.labels == c]).mean(0) for c in range(10)])
    means = means.flatten(1).double()

    def nearest_mean_logits(x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x.flatten(1), means) ** 2 / 0.5

    latents = torch.randn(32, 8, generator=torch.Generator().manual_seed(5))
    return EvalMetric("log-is", log_inception_score(nearest_mean_logits), latents)


def _actual(gan: tuple[DCGANGenerator, DCGANDiscriminator], data: ImageSet, window: TraceWindow,
            metric: EvalMetric, lr: float, positions: list[int]) -> np.ndarray:
    base = replay_metric(*gan, data, window, metric, lr)
    return np.array([replay_metric(*gan, data, window, metric, lr, [j]) - base for j in positions])


def test_estimate_equals_replay_to_first_order(gan: Any, planted: ImageSet, metric: EvalMetric) -> None:
    # Dropping x_j moves D by O(lr) and V (a function of G) by O(lr^2); terms of higher order
    # grow with the tiny GAN's curvature, so only at a small step is the linearisation exact.
    # Measured on fixtures of seeds 0-10: at lr 1e-5 the median ratio is 1.0000 on all six, at
    # 1e-3 0.52-1.16, and at 5e-2 Spearman with the replays is -0.2..0.3, no better than chance.
    # The few positions that differ at 1e-5 share one offset: their removal tips a LeakyReLU
    # over its kink somewhere later in the window, which no linearisation sees.
    window = TraceWindow(BATCH, seed=0, start_step=27, steps=9)
    lr = 1e-5
    weights = [p.detach().clone() for m in gan for p in m.parameters()]
    influence = if4gan_influence(*gan, planted, window, metric, lr)
    assert all(torch.equal(a, p) for a, p in zip(weights, (p for m in gan for p in m.parameters()), strict=True))
    # One epoch: every image is in exactly one minibatch.
    np.testing.assert_array_equal(influence.n_traced, np.ones(len(planted)))
    assert influence.metric_start > 1e-3 and set(influence.timings) == {"trace", "metric_gradient", "adjoint", "total"}
    # Images of the last step cannot move G; both the estimate and the replay say 0.
    last = window.indices(len(planted), window.steps - 1)
    assert np.all(influence.delta[last] == 0)

    positions = [j for j in list(range(CLEAN, CLEAN + NOISY)) + list(range(12)) if j not in last]
    estimate = influence.delta[positions]
    actual = _actual(gan, planted, window, metric, lr, positions)
    report = np.c_[positions, estimate, actual]
    assert np.all(actual != 0), report
    ratio = estimate / actual
    # Which positions tip a kink depends on the fixture's float32 training, so on the CPU's kernels
    # (a few more disagree in sign on the AMD EPYC VMs without AVX-512 that CI may use).
    assert np.mean(np.sign(estimate) == np.sign(actual)) >= 0.85, report
    assert abs(np.median(ratio) - 1) < 0.01, report
    assert np.mean(np.abs(ratio - 1) < 0.01) >= 0.7, report


def test_estimate_is_close_for_a_small_learning_rate(gan: Any, planted: ImageSet, metric: EvalMetric) -> None:
    # Every position, not just the median, within 5%. At lr 1e-4 this held on one CPU and not
    # on another: the float32 training of the fixture differs between CPUs' kernels, and on the
    # AMD one the 1e-4 replays cross a LeakyReLU kink, which adds an offset of ~5e-10 to every
    # replay (ratios -0.5..2.5), while at 1e-5 all six ratios are 1.000 +- 0.001 there (at 1e-6
    # the smallest replays, ~1e-15, are float64 rounding).
    window = TraceWindow(BATCH, seed=0, start_step=27, steps=3)
    lr = 1e-5
    influence = if4gan_influence(*gan, planted, window, metric, lr)
    positions = [int(j) for k in range(window.steps - 1) for j in window.indices(len(planted), k)][:6]
    actual = _actual(gan, planted, window, metric, lr, positions)
    np.testing.assert_allclose(influence.delta[positions], actual, rtol=0.05, atol=0.05 * np.abs(actual).max())


def test_influence_is_deterministic(gan: Any, planted: ImageSet, metric: EvalMetric) -> None:
    window = TraceWindow(BATCH, seed=1, start_step=0, steps=2)
    first = if4gan_influence(*gan, planted, window, metric, 0.01)
    second = if4gan_influence(*gan, planted, window, metric, 0.01)
    np.testing.assert_array_equal(first.delta, second.delta)
    assert first.metric_end == second.metric_end
    # Only the 2 x 4 traced images can have an effect.
    assert first.n_traced.sum() == 8 and np.all(first.delta[first.n_traced == 0] == 0)


def test_a_diverging_window_is_an_error_not_nan_values(gan: Any, planted: ImageSet, metric: EvalMetric) -> None:
    window = TraceWindow(BATCH, seed=1, start_step=0, steps=3)
    with pytest.raises(FloatingPointError, match="diverged.*lower baselines.if4gan.lr"):
        if4gan_influence(*gan, planted, window, metric, 1e38)


def test_bad_input_is_refused(gan: Any, planted: ImageSet, metric: EvalMetric, digits: ImageSet) -> None:
    window = TraceWindow(BATCH, seed=0, start_step=0, steps=1)
    with pytest.raises(ValueError, match="steps >= 1"):
        TraceWindow(BATCH, seed=0, start_step=0, steps=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        if4gan_influence(*gan, planted, window, metric, 0.0)
    with pytest.raises(ValueError, match="do not fit"):
        if4gan_influence(*gan, ImageSet(torch.zeros(4, 1, 16, 16, dtype=torch.uint8), np.arange(4)), window, metric,
                         0.1)
    with pytest.raises(ValueError, match="evaluation latents"):
        if4gan_influence(*gan, planted, window, EvalMetric("x", metric.fn, torch.zeros(4, 3)), 0.1)
    with pytest.raises(TypeError, match="DCGAN"):
        if4gan_influence(gan[0], torch.nn.Linear(2, 2), planted, window, metric, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exclude"):
        replay_metric(*gan, planted, window, metric, 0.1, exclude=[len(planted)])
    with pytest.raises(ValueError, match="is a vae"):
        IF4GAN.from_profile("ci").fit(planted, "mnist-vae")
    with pytest.raises(KeyError, match="unknown generator"):
        IF4GAN.from_profile("ci").fit(planted, "nope-gan")
    with pytest.raises(ValueError, match="needs the zoo GAN"):
        IF4GAN.from_profile("ci").fit(planted)
    with pytest.raises(RuntimeError, match="call fit"):
        IF4GAN.from_profile("ci").score(planted)
    bad = get_profile("ci")
    bad["baselines"]["if4gan"]["metric"] = "fid"
    with pytest.raises(ValueError, match="unknown IF4GAN metric"):
        IF4GAN.from_profile(bad)
    with pytest.raises(ValueError, match="steps must be"):
        create_attributor("if4gan", steps=0, lr=1e-3, eval_latents=8, eval_seed=0)
    del bad["baselines"]["if4gan"]
    with pytest.raises(KeyError, match="baselines.if4gan"):
        IF4GAN.from_profile(bad)


def test_zoo_values_are_cached(digits: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = {"train": digits.subset(range(1500), name="digits-train"),
              "test": digits.subset(range(1500, len(digits)), name="digits-test")}
    monkeypatch.setattr(zoo, "load_split", lambda dataset, split: splits[split])
    profile = get_profile("ci")
    m = profile["models"]
    m.update(train_images=48, test_images=32, quality_samples=8, sample_batch=8)
    m["noisy"].update(n=8)
    m["gan"].update(batch_size=16)
    m["classifier"].update(batch_size=16)
    profile["baselines"]["if4gan"].update(steps=2, eval_latents=8)

    data = zoo.training_data("noisy-mnist-gan", profile)
    generated = data.train.subset(range(3), name="stand-in-generated")
    with pytest.raises(ValueError, match="replays noisy-mnist-gan's own training steps"):
        IF4GAN.from_profile(profile, root=tmp_path).fit(data.train.subset(range(10)), "noisy-mnist-gan")
    attribution = IF4GAN.from_profile(profile, root=tmp_path, progress=False).fit(
        data.train, "noisy-mnist-gan").score(generated)
    result = attribution.detail
    assert data.noisy_ids is not None
    # The influence is on the GAN's metric, not on one sample: every generated image gets the values.
    # Sparse over the traced images (2 steps of 16 here); the untraced count 0, as their delta is 0.
    traced = np.flatnonzero(result.values["n_traced"].to_numpy() > 0)
    assert attribution.method == "if4gan" and attribution.scores.shape == (3, len(traced)) and len(traced) == 32
    np.testing.assert_array_equal(attribution.values, -result.delta)
    np.testing.assert_array_equal(attribution.index[1], traced)
    np.testing.assert_array_equal(attribution.matrix(), np.tile(attribution.values, (3, 1)))
    values = result.values
    assert len(values) == 56 and list(values["train_id"]) == list(data.train.ids)
    np.testing.assert_array_equal(values["value"], -result.delta)
    assert sorted(values["rank"]) == list(range(1, 57)) and values["n_traced"].sum() == 32
    assert result.config["window"]["steps"] == 2 and result.config["traced_images"] == 32
    assert result.timings["total"] >= result.timings["adjoint"] > 0

    monkeypatch.setattr(if4gan, "if4gan_influence", lambda *a, **k: pytest.fail("IF4GAN cache missed"))
    again = IF4GAN.from_profile(profile, root=tmp_path, progress=False).fit(
        data.train, "noisy-mnist-gan").score(generated).detail
    np.testing.assert_array_equal(again.delta, result.delta)
    assert again.timings == result.timings
    profile["baselines"]["if4gan"]["lr"] = 2e-3
    with pytest.raises(pytest.fail.Exception, match="cache missed"):
        IF4GAN.from_profile(profile, root=tmp_path, progress=False).fit(data.train, "noisy-mnist-gan").score(generated)
