"""Counterfactual validation: subsets, LDS on synthetic datamodels, attributions, cached VAE and diffusion runs."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from gmval import counterfactual as cf
from gmval.attribution import Attribution, create_attributor
from gmval.counterfactual.removal import _top_k
from gmval.images import ImageSet
from gmval.models import diffusion as diffusion_module
from gmval.models import vae as vae_module
from gmval.models.diffusion import DiffusionConfig
from gmval.models.vae import VAEConfig
from gmval.profiles import PROFILES, get_profile
from gmval.store import artefact_key
from gmval.valuator import ValuationResult, Valuator

TINY = VAEConfig(1, 16, latent_dim=4, hidden=16)


# --------------------------------------------------------------------------- subsets

def test_random_subsets_are_deterministic_balanced_and_nested() -> None:
    a = cf.random_subsets(101, 6, fraction=0.5, seed=3)
    assert a.shape == (6, 101) and a.dtype == bool
    assert (a.sum(axis=1) == 50).all()  # round(50.5) = 50 (banker's rounding), every subset alike
    np.testing.assert_array_equal(a, cf.random_subsets(101, 6, fraction=0.5, seed=3))
    np.testing.assert_array_equal(a[:4], cf.random_subsets(101, 4, fraction=0.5, seed=3))
    assert not np.array_equal(a, cf.random_subsets(101, 6, fraction=0.5, seed=4))
    assert len({row.tobytes() for row in a}) == 6  # no two subsets alike
    assert (cf.random_subsets(40, 2, fraction=0.25, seed=0).sum(axis=1) == 10).all()


def test_random_subsets_keep_class_proportions() -> None:
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    masks = cf.random_subsets(100, 5, fraction=0.5, seed=0, labels=labels)
    for mask in masks:
        np.testing.assert_array_equal(np.bincount(labels[mask], minlength=4), [20, 15, 10, 5])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 1, "n_subsets": 2}, "n must be"),
    ({"n": 10, "n_subsets": 0}, "n_subsets"),
    ({"n": 10, "n_subsets": 2, "fraction": 1.0}, "fraction"),
    ({"n": 10, "n_subsets": 2, "fraction": 0.01}, "subset of 0"),
    ({"n": 10, "n_subsets": 2, "labels": np.zeros(9)}, "labels"),
])
def test_random_subsets_reject_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cf.random_subsets(**kwargs)


# --------------------------------------------------------------------------- LDS

@pytest.fixture(scope="module")
def datamodel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A linear datamodel: the loss of sample j on subset S is -Σ_{i∈S} true[j, i] plus small noise."""
    rng = np.random.default_rng(0)
    m, n, s = 50, 80, 40
    true = rng.standard_normal((m, n))
    masks = cf.random_subsets(n, s, seed=1)
    losses = -(masks @ true.T) + 0.05 * rng.standard_normal((s, m))
    return true, masks, losses


def test_lds_of_the_true_linear_datamodel_is_one(datamodel: tuple[np.ndarray, ...]) -> None:
    true, masks, losses = datamodel
    res = cf.lds(true, masks, losses, n_boot=500, seed=0)
    assert res.mean > 0.97 and res.low > 0.95 and res.low <= res.mean <= res.high <= 1.0
    assert res.per_sample.shape == (50,) and res.n_subsets == 40 and res.n_constant == 0
    # The sign convention: flipped scores (higher = hurts) are perfectly anti-correlated.
    assert cf.lds(-true, masks, losses).mean < -0.97
    # Spearman is invariant to a positive per-sample rescaling (e.g. GMValuator's quality q_j).
    scaled = cf.lds(true * np.linspace(0.1, 3.0, 50)[:, None], masks, losses, n_boot=500, seed=0)
    np.testing.assert_allclose(scaled.per_sample, res.per_sample)


def test_lds_of_random_scores_is_zero_within_the_interval(datamodel: tuple[np.ndarray, ...]) -> None:
    true, masks, losses = datamodel
    noise = np.random.default_rng(7).standard_normal(true.shape)
    res = cf.lds(noise, masks, losses, n_boot=1000, seed=0)
    assert abs(res.mean) < 0.1
    assert res.low < 0.0 < res.high
    # A partly right method sits in between.
    half = cf.lds(true + 2.0 * noise, masks, losses)
    assert 0.2 < half.mean < 0.8
    # The bootstrap is seeded: same seed, same interval; the mean does not depend on it.
    again = cf.lds(noise, masks, losses, n_boot=1000, seed=0)
    assert (again.low, again.high) == (res.low, res.high)
    assert cf.lds(noise, masks, losses, n_boot=1000, seed=1).mean == res.mean


def test_lds_counts_a_constant_prediction_as_zero(datamodel: tuple[np.ndarray, ...]) -> None:
    true, masks, losses = datamodel
    scores = true.copy()
    scores[3] = 0.0
    res = cf.lds(scores, masks, losses)
    assert res.per_sample[3] == 0.0 and res.n_constant == 1
    assert np.isfinite(res.per_sample).all()


def test_lds_rejects_bad_input(datamodel: tuple[np.ndarray, ...]) -> None:
    true, masks, losses = datamodel
    with pytest.raises(ValueError, match="masks must be"):
        cf.lds(true[:, :-1], masks, losses)
    with pytest.raises(ValueError, match="losses must be"):
        cf.lds(true, masks, losses[:, :-1])
    with pytest.raises(ValueError, match="boolean"):
        cf.lds(true, masks.astype(int), losses)
    with pytest.raises(ValueError, match="at least 3 subsets"):
        cf.lds(true, masks[:2], losses[:2])
    bad = true.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="scores hold 1 NaN"):
        cf.lds(bad, masks, losses)
    bad_loss = losses.copy()
    bad_loss[1, 1] = np.inf
    with pytest.raises(ValueError, match="losses hold 1 NaN"):
        cf.lds(true, masks, bad_loss)
    with pytest.raises(ValueError, match="scores must be"):
        cf.lds(true[0], masks, losses)


# --------------------------------------------------------------------------- attributions

@pytest.fixture(scope="module")
def small(digits16: ImageSet) -> tuple[ImageSet, ImageSet]:
    train = digits16.subset(range(200), "cf-train")
    generated = ImageSet(digits16.images[200:206].clone(), np.arange(6), name="cf-generated")
    return train, generated


def test_gmvaluator_attribution_places_contributions(small: tuple[ImageSet, ImageSet]) -> None:
    train, generated = small
    res = Valuator("pixels", k=5, cache_dir=None, progress=False).fit(train).value(generated)
    attribution = res.attribution()
    assert attribution.method == "gmvaluator" and attribution.detail is res
    dense = attribution.matrix()
    assert dense.shape == (6, 200)
    assert ((dense > 0).sum(axis=1) == 5).all()
    top, contrib = res.topk_indices(), res.contributors["contribution"].to_numpy().reshape(6, 5)
    np.testing.assert_allclose(np.take_along_axis(dense, top, axis=1), contrib)
    np.testing.assert_array_equal(attribution.top_k(5), top)  # highest contribution = nearest first
    np.testing.assert_allclose(dense.sum(axis=1), 1.0)  # no quality model: q_j = 1, weights sum to 1
    np.testing.assert_allclose(attribution.values, res.values["value"])
    np.testing.assert_allclose(res.attribution("weight").matrix(), dense)
    with pytest.raises(ValueError, match="no column"):
        res.attribution("nope")
    broken = ValuationResult(res.values, res.contributors.assign(contribution=np.nan), {}, res.config)
    with pytest.raises(ValueError, match="NaN"):
        broken.attribution()


def test_pixel_attribution_scores_an_exact_copy_highest(small: tuple[ImageSet, ImageSet]) -> None:
    train, _ = small
    copies = ImageSet(train.images[[7, 42]].clone(), np.arange(2), name="copies")
    dense = create_attributor("pixel").fit(train).score(copies).scores
    assert dense.shape == (2, 200) and (dense <= 0).all()
    np.testing.assert_array_equal(dense.argmax(axis=1), [7, 42])
    assert dense[0, 7] == 0.0
    topk = create_attributor("pixel", k=10).fit(train).score(copies).scores
    assert (topk.sum(axis=1) == 10).all() and topk[0, 7] == 1.0 and topk[1, 42] == 1.0
    with pytest.raises(ValueError, match="k=201"):
        create_attributor("pixel", k=201).fit(train).score(copies)


# --------------------------------------------------------------------------- retraining

def _trainer(train: ImageSet, tmp: Path, lr: float = 3e-3, **kw: object) -> cf.SubsetTrainer:
    args: dict = {"checkpoint_seconds": 600.0, "root": tmp / "models", "cache": tmp / "cache", "full_keep_every": 4}
    args.update(kw)
    return cf.SubsetTrainer(train, cf.Recipe("vae", TINY, epochs=1, batch_size=16,
                                             hyper={"optimizer": "adam", "lr": lr}), **args)


def _step_counter(monkeypatch: pytest.MonkeyPatch, task: type) -> list[int]:
    """Counts the training steps ``task`` takes (one list entry per step)."""
    calls: list[int] = []
    original = task.step

    def step(self, batch, generator):  # type: ignore[no-untyped-def]
        calls.append(batch.step)
        return original(self, batch, generator)

    monkeypatch.setattr(task, "step", step)
    return calls


@pytest.fixture
def count_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the VAE training steps taken."""
    return _step_counter(monkeypatch, vae_module.VAETask)


def test_end_to_end_losses_are_finite_and_retrains_are_cached(small: tuple[ImageSet, ImageSet], tmp_path: Path,
                                                              count_steps: list[int]) -> None:
    train, _ = small
    trainer = _trainer(train, tmp_path)
    full = trainer.fit(trainer.full_mask())
    assert len(count_steps) == 12  # 200 // 16 steps, one epoch
    assert list((trainer.folder(trainer.full_mask(), 0) / "snapshots").glob("*.safetensors"))  # for TracIn
    generated = trainer.generate(full, 6, seed=1)
    masks = cf.random_subsets(len(train), 4, seed=0, labels=train.labels)
    count_steps.clear()
    losses = trainer.subset_losses(masks, generated, draws=4, seed=0)
    assert losses.shape == (4, 6) and np.isfinite(losses).all() and (losses > 0).all()
    assert len(count_steps) == 4 * 6  # 100 // 16 steps per subset model
    # Models differ by subset, so the losses do too.
    assert np.ptp(losses, axis=0).min() > 0
    res = cf.lds(create_attributor("pixel").fit(train).score(generated).matrix(), masks, losses, n_boot=50)
    assert -1.0 <= res.low <= res.mean <= res.high <= 1.0
    # Second call: nothing is trained, and the losses are identical.
    count_steps.clear()
    np.testing.assert_array_equal(trainer.subset_losses(masks, generated, draws=4, seed=0), losses)
    assert count_steps == []
    # Without the loss cache the models are still loaded, not retrained, and give the same losses.
    fresh = _trainer(train, tmp_path, cache=tmp_path / "other-cache")
    np.testing.assert_array_equal(fresh.subset_losses(masks, generated, draws=4, seed=0), losses)
    assert count_steps == []
    # Another recipe is another model.
    assert _trainer(train, tmp_path, lr=1e-3).folder(masks[0], 0) != trainer.folder(masks[0], 0)
    assert trainer.folder(masks[0], 1) != trainer.folder(masks[0], 0)


def test_worker_processes_train_the_same_models(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    train, _ = small
    serial = _trainer(train, tmp_path / "serial")
    generated = serial.generate(serial.fit(serial.full_mask()), 5, seed=1)
    masks = cf.random_subsets(len(train), 3, seed=0, labels=train.labels)
    expected = serial.subset_losses(masks, generated, draws=4, seed=0)
    pooled = _trainer(train, tmp_path / "pooled", workers=2)
    # A run asked for twice is trained once (two workers must not share a run folder).
    runs = [(masks[0], 0), (masks[1], 0), (masks[0], 0), (masks[2], 0)]
    losses = pooled.model_losses(runs, generated, draws=4, loss_seed=0)
    # Workers have one thread each, so sums may be ordered differently than here.
    np.testing.assert_allclose(np.stack(losses), expected[[0, 1, 0, 2]], rtol=1e-5)
    assert {p.name for p in (tmp_path / "pooled" / "models").iterdir()} == \
           {serial.folder(m, 0).name for m in masks}
    with pytest.raises(ValueError, match="workers must be"):
        _trainer(train, tmp_path, workers=0)


def test_a_failed_worker_retraining_is_named_and_the_others_are_kept(small: tuple[ImageSet, ImageSet],
                                                                      tmp_path: Path) -> None:
    train, _ = small
    trainer = _trainer(train, tmp_path, workers=2)
    generated = trainer.generate(trainer.fit(trainer.full_mask()), 4, seed=1)
    masks = cf.random_subsets(len(train), 3, seed=0, labels=train.labels)
    # A file where the second run's folder should go: that training cannot start.
    trainer.folder(masks[1], 0).write_text("in the way")
    with pytest.raises(RuntimeError, match=rf"vae retraining on mask {cf.mask_digest(masks[1])[:8]}, seed 0"):
        trainer.subset_losses(masks, generated, draws=4, seed=0)
    assert (trainer.folder(masks[0], 0) / "checkpoint.safetensors").is_file()


def test_interrupted_retraining_resumes_to_the_same_model(small: tuple[ImageSet, ImageSet], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    train, _ = small
    mask = cf.random_subsets(len(train), 1, seed=5)[0]
    # A checkpoint after every step, so the interruption loses nothing.
    reference = _trainer(train, tmp_path / "a", checkpoint_seconds=0.0).fit(mask)
    original, calls = vae_module.VAETask.step, []

    def crash_at_third(self, batch, generator):  # type: ignore[no-untyped-def]
        calls.append(batch.step)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, batch, generator)

    monkeypatch.setattr(vae_module.VAETask, "step", crash_at_third)
    trainer = _trainer(train, tmp_path / "b", checkpoint_seconds=0.0)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(mask)
    resumed = trainer.fit(mask)
    assert calls[3] == 2  # the resumed run starts at the step that was interrupted
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_vae_sample_loss_uses_fixed_noise(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    train, generated = small
    model = _trainer(train, tmp_path).fit(np.ones(len(train), dtype=bool))
    a = cf.vae_sample_loss(model, generated, draws=3, seed=0)
    np.testing.assert_array_equal(a, cf.vae_sample_loss(model, generated.images, draws=3, seed=0))
    assert not np.allclose(a, cf.vae_sample_loss(model, generated, draws=3, seed=1))
    # Sample j's noise depends on j only: scoring a prefix gives the same numbers.
    np.testing.assert_allclose(cf.vae_sample_loss(model, generated.images[:2], draws=3, seed=0), a[:2], rtol=1e-6)
    with pytest.raises(ValueError, match="draws"):
        cf.vae_sample_loss(model, generated, draws=0)
    with pytest.raises(ValueError, match="expects"):
        cf.vae_sample_loss(model, torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_subset_trainer_rejects_bad_masks(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    train, _ = small
    trainer = _trainer(train, tmp_path)
    with pytest.raises(ValueError, match=r"bool array of shape \(200,\)"):
        trainer.fit(np.ones(199, dtype=bool))
    with pytest.raises(ValueError, match="at least one image"):
        trainer.fit(np.zeros(200, dtype=bool))
    with pytest.raises(ValueError, match="seeds"):
        _trainer(train, tmp_path, seeds=())


def test_retrain_without_topk_at_small_scale(small: tuple[ImageSet, ImageSet], tmp_path: Path,
                                             count_steps: list[int]) -> None:
    train, _ = small
    trainer = _trainer(train, tmp_path)
    generated = trainer.generate(trainer.fit(trainer.full_mask()), 4, seed=2)
    methods = {"pixel": create_attributor("pixel").fit(train).score(generated)}
    count_steps.clear()
    table = cf.retrain_without_topk(trainer, methods, generated, samples=[1], ks=[5, 20], draws=4)
    assert list(table.columns) == ["sample", "k", "method", "loss_full", "loss_removed", "delta"]
    assert len(table) == 4 and set(table["method"]) == {"pixel", "random"}
    assert np.isfinite(table["delta"]).all() and (table["loss_removed"] != table["loss_full"]).all()
    np.testing.assert_allclose(table["delta"], table["loss_removed"] - table["loss_full"])
    # Four retrainings (195 and 180 images, twice each); the full model was cached.
    assert len(count_steps) == 2 * (195 // 16) + 2 * (180 // 16)
    with pytest.raises(ValueError, match="k=200 must be between 1 and n-1 = 199"):
        cf.retrain_without_topk(trainer, methods, generated, samples=[0], ks=[200])
    with pytest.raises(ValueError, match="sample 9"):
        cf.retrain_without_topk(trainer, methods, generated, samples=[9], ks=[5])
    with pytest.raises(ValueError, match="built-in"):
        cf.retrain_without_topk(trainer, {"random": methods["pixel"]}, generated, samples=[0], ks=[5])
    with pytest.raises(ValueError, match="scores 5 training images for 4 generated ones, expected 200 for 4"):
        cf.retrain_without_topk(trainer, {"p": Attribution("p", 5, methods["pixel"].scores[:, :5])}, generated,
                                samples=[0], ks=[5])


def test_top_k_breaks_ties_at_random_not_by_index() -> None:
    row = np.zeros(1000)
    row[[900, 901]] = [2.0, 1.0]
    top = _top_k(row, 50, np.random.default_rng(0))
    assert list(top[:2]) == [900, 901]
    assert np.median(top[2:]) > 200  # index order would pick 0..47


@pytest.mark.parametrize("key", ["counterfactual", "counterfactual_diffusion"])
def test_every_profile_sizes_the_counterfactual_run(key: str) -> None:
    for name in PROFILES:
        p = get_profile(name)[key]
        assert p["n_subsets"] >= 3, name
        assert max(p["removal"]["ks"]) <= p["k"], f"{name}: removal k beyond the valuator's contributors"
        assert 0 < p["fraction"] < 1
        assert 1 <= p["trak"]["models"] and p["trak"]["ridge"] > 0, name
        known = ({f"GMValuator ({d})" for d, _ in p["distances"]} | {"pixel top-k", "TRAK"}
                 | ({"VAE-TracIn"} if key == "counterfactual" else set()))
        assert set(p["removal"]["methods"]) <= known, name
    assert get_profile("default")[key]["n_subsets"] >= 32
    assert get_profile("paper")[key]["n_subsets"] >= 64
    assert len(get_profile("paper")[key]["train_seeds"]) >= 3


def test_vae_runs_keep_the_folders_of_the_vae_only_trainer(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    # Runs trained before the trainer took recipes are found again: the key has not moved.
    train, _ = small
    trainer = _trainer(train, tmp_path)
    mask = cf.random_subsets(len(train), 1, seed=2)[0]
    config = {k: v for k, v in asdict(trainer.train_config(mask, 0)).items() if k != "checkpoint_seconds"}
    params = {"data": train.fingerprint(), "mask": cf.mask_digest(mask), "n_kept": int(mask.sum()),
              "vae": asdict(TINY), "optimizer": "adam", "lr": 3e-3, "train": config}
    assert trainer.folder(mask, 0) == tmp_path / "models" / artefact_key("cf-vae", params)


# --------------------------------------------------------------------------- diffusion

TINY_DIFFUSION = DiffusionConfig(1, 16, 10, block_out_channels=(8, 16), attention=(False, False),
                                 beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


def _diffusion_trainer(train: ImageSet, tmp: Path, **kw: object) -> cf.SubsetTrainer:
    recipe = cf.Recipe("diffusion", TINY_DIFFUSION, epochs=1, batch_size=16, hyper={"lr": 2e-3, "ema_decay": 0.9},
                       sampling={"sampling_steps": 2, "guidance_scale": 2.0}, loss={"timesteps": 3})
    args: dict = {"checkpoint_seconds": 600.0, "root": tmp / "models", "cache": tmp / "cache"}
    args.update(kw)
    return cf.SubsetTrainer(train, recipe, **args)


@pytest.fixture
def count_diffusion_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the diffusion training steps taken."""
    return _step_counter(monkeypatch, diffusion_module.DiffusionTask)


@pytest.fixture(scope="module")
def diffusion_models(small: tuple[ImageSet, ImageSet], tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[cf.SubsetTrainer, np.ndarray, ImageSet]:
    """A tiny diffusion trainer on 200 digits, two subsets and 6 samples of its full model."""
    train, _ = small
    trainer = _diffusion_trainer(train, tmp_path_factory.mktemp("diffusion"))
    masks = cf.random_subsets(len(train), 2, seed=0, labels=train.labels)
    generated = trainer.generate(trainer.fit(trainer.full_mask()), 6, seed=1)
    return trainer, masks, generated


def test_diffusion_samples_keep_the_classes_they_were_drawn_for(
        diffusion_models: tuple[cf.SubsetTrainer, np.ndarray, ImageSet]) -> None:
    trainer, _, generated = diffusion_models
    assert generated.shape == (1, 16, 16) and len(generated) == 6
    np.testing.assert_array_equal(generated.labels, np.arange(6) % 10)
    assert trainer.folder(trainer.full_mask(), 0).name.startswith("cf-diffusion-")


def test_diffusion_sample_loss_is_deterministic_and_model_specific(
        diffusion_models: tuple[cf.SubsetTrainer, np.ndarray, ImageSet], monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, masks, generated = diffusion_models
    full, sub = trainer.fit(trainer.full_mask()), trainer.fit(masks[0])
    a = cf.diffusion_sample_loss(full, generated, generated.labels, timesteps=3, draws=2, seed=0)
    assert a.shape == (6,) and np.isfinite(a).all() and (a > 0).all()
    np.testing.assert_array_equal(a, cf.diffusion_sample_loss(full, generated.images, generated.labels, 3, 2, 0))
    # The noise is fixed by (seed, sample): another seed moves every loss, another model too.
    assert not np.allclose(a, cf.diffusion_sample_loss(full, generated, generated.labels, 3, 2, seed=1))
    assert np.abs(a - cf.diffusion_sample_loss(sub, generated, generated.labels, 3, 2, 0)).min() > 0
    # The class matters (no label dropout at evaluation).
    other = (generated.labels + 1) % 10
    assert not np.allclose(a, cf.diffusion_sample_loss(full, generated, other, 3, 2, 0))
    # Sample j's noise depends on j only: a prefix, or other forward batches, give the same numbers.
    np.testing.assert_allclose(cf.diffusion_sample_loss(full, generated.images[:2], generated.labels[:2], 3, 2, 0),
                               a[:2], rtol=1e-5)
    monkeypatch.setattr(cf.losses, "DIFFUSION_LOSS_COPIES", 6)  # one image per forward pass
    np.testing.assert_allclose(cf.diffusion_sample_loss(full, generated, generated.labels, 3, 2, 0), a, rtol=1e-5)


def test_diffusion_sample_loss_rejects_bad_input(diffusion_models: tuple[cf.SubsetTrainer, np.ndarray, ImageSet]
                                                 ) -> None:
    trainer, _, generated = diffusion_models
    full = trainer.fit(trainer.full_mask())
    with pytest.raises(ValueError, match="draws"):
        cf.diffusion_sample_loss(full, generated, generated.labels, draws=0)
    with pytest.raises(ValueError, match="timesteps"):
        cf.diffusion_sample_loss(full, generated, generated.labels, timesteps=0)
    with pytest.raises(ValueError, match="labels have shape"):
        cf.diffusion_sample_loss(full, generated, generated.labels[:3])
    with pytest.raises(ValueError, match="classes 0..9"):
        cf.diffusion_sample_loss(full, generated, np.full(6, 10))
    with pytest.raises(ValueError, match="expects"):
        cf.diffusion_sample_loss(full, torch.zeros(2, 1, 8, 8, dtype=torch.uint8), np.zeros(2, dtype=int))
    unlabelled = ImageSet(generated.images, generated.ids, name="unlabelled")
    with pytest.raises(ValueError, match="labels it was generated for"):
        trainer.model_loss(trainer.full_mask(), 0, unlabelled, draws=1, loss_seed=0)


def test_diffusion_subset_models_are_cached_and_reloaded(
        diffusion_models: tuple[cf.SubsetTrainer, np.ndarray, ImageSet], tmp_path: Path,
        count_diffusion_steps: list[int]) -> None:
    trainer, masks, generated = diffusion_models
    losses = trainer.subset_losses(masks, generated, draws=1, seed=0)
    assert losses.shape == (2, 6) and np.isfinite(losses).all()
    assert np.ptp(losses, axis=0).min() > 0  # the two subsets' models differ
    count_diffusion_steps.clear()
    # A fresh trainer over the same folders (a new session) loads every model instead of training it.
    fresh = _diffusion_trainer(trainer.train, trainer.root.parent, cache=tmp_path / "other-cache")
    np.testing.assert_array_equal(fresh.subset_losses(masks, generated, draws=1, seed=0), losses)
    assert count_diffusion_steps == []
    for a, b in zip(trainer.fit(masks[1]).state_dict().values(), fresh.fit(masks[1]).state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b)
    # Another recipe is another model, trained anew.
    slower = cf.Recipe("diffusion", TINY_DIFFUSION, epochs=1, batch_size=16, hyper={"lr": 1e-3, "ema_decay": 0.9},
                       sampling={"sampling_steps": 25, "guidance_scale": 2.0}, loss={"timesteps": 3})
    other = cf.SubsetTrainer(trainer.train, slower, root=trainer.root, cache=None)
    assert other.folder(masks[0], 0) != trainer.folder(masks[0], 0)
    other.fit(masks[0])
    assert len(count_diffusion_steps) == 100 // 16


def test_retrain_without_topk_works_for_the_diffusion_recipe(
        diffusion_models: tuple[cf.SubsetTrainer, np.ndarray, ImageSet]) -> None:
    trainer, _, generated = diffusion_models
    methods = {"pixel": create_attributor("pixel").fit(trainer.train).score(generated)}
    table = cf.retrain_without_topk(trainer, methods, generated, samples=[0], ks=[20], draws=1)
    assert len(table) == 2 and np.isfinite(table["delta"]).all()
    summary = cf.removal_summary(table)
    assert {"method", "k", "ours", "median", "min", "max"} <= set(summary.columns) and len(summary) == 2


def test_recipes_come_from_profile_entries(small: tuple[ImageSet, ImageSet]) -> None:
    train, _ = small
    ci = get_profile("ci")
    vae = cf.recipe_from_settings(ci["counterfactual"], train)
    diffusion = cf.recipe_from_settings(ci["counterfactual_diffusion"], train)
    assert (vae.kind, diffusion.kind) == ("vae", "diffusion")
    assert vae.hyper == {"optimizer": ci["counterfactual"]["vae"]["optimizer"], "lr": ci["counterfactual"]["vae"]["lr"]}
    assert diffusion.config.num_classes == 10 and diffusion.config.image_size == 16
    assert diffusion.loss == {"timesteps": ci["counterfactual_diffusion"]["loss_timesteps"]}
    with pytest.raises(ValueError, match="a gan has no measured loss"):
        cf.Recipe("gan", None, epochs=1, batch_size=16, hyper={})
    both = {**ci["counterfactual"], "diffusion": ci["counterfactual_diffusion"]["diffusion"]}
    with pytest.raises(ValueError, match="exactly one recipe"):
        cf.recipe_from_settings(both, train)
    with pytest.raises(ValueError, match="labelled"):
        cf.recipe_from_settings(ci["counterfactual_diffusion"], ImageSet(train.images, train.ids))
    with pytest.raises(ValueError, match="no counterfactual entry"):
        cf.SubsetTrainer.from_profile("ci", key="counterfactual_gan")


def test_lds_table_and_seed_agreement(small: tuple[ImageSet, ImageSet], tmp_path: Path) -> None:
    train, _ = small
    trainer = _trainer(train, tmp_path, seeds=(0, 1))
    generated = trainer.generate(trainer.fit(trainer.full_mask()), 5, seed=3)
    masks = cf.random_subsets(len(train), 3, seed=0)
    losses = trainer.subset_losses(masks, generated, draws=2, seed=0)
    agreement = cf.seed_agreement(trainer, masks, generated, draws=2, loss_seed=0)
    assert agreement.shape == (5,) and np.all((agreement >= -1) & (agreement <= 1))
    assert cf.seed_agreement(_trainer(train, tmp_path), masks, generated, draws=2, loss_seed=0) is None
    methods = {"pixel": create_attributor("pixel").fit(train).score(generated),
               "zero": Attribution("zero", len(train), np.zeros((5, len(train))))}
    table = cf.lds_table(methods, {"pixel": ("pixel-l2", "none")}, masks, losses, n_boot=20)
    assert list(table["method"]) == ["pixel", "zero"] and list(table["distance"]) == ["pixel-l2", "-"]
    assert table.loc[1, "n_constant"] == 5 and table.loc[1, "lds"] == 0.0
    assert table.loc[0, "lds"] == cf.lds(methods["pixel"].matrix(), masks, losses, n_boot=20).mean
    with pytest.raises(ValueError, match="scores 199 training images, the masks 200"):
        cf.lds_table({"short": Attribution("short", 199, np.zeros((5, 199)))}, {}, masks, losses)


def test_lds_interval_covers_model_level_noise() -> None:
    # Outputs that are pure model-level noise, shared by every generated sample (a model
    # trained on subset s is better or worse for all samples at once), and scores that share
    # one image-level pattern: a chance correlation then repeats identically in every sample.
    # Resampling samples alone gave [-0.110, -0.094] here; resampling subsets too must cover 0.
    rng = np.random.default_rng(3)
    n, m, s = 400, 60, 16
    masks = cf.random_subsets(n, s, seed=3)
    losses = rng.standard_normal(s)[:, None] + 0.01 * rng.standard_normal((s, m))
    scores = rng.standard_normal(n)[None] + 0.1 * rng.standard_normal((m, n))
    res = cf.lds(scores, masks, losses, n_boot=500, seed=0)
    assert res.low < 0.0 < res.high
    assert res.high - res.low > 0.3
