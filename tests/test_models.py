"""The generator zoo: tiny trainings, exact resume, reproducible sampling, atomic keyed checkpoints.

Everything runs on sklearn's 8x8 digits for a handful of steps, so the file takes seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gmval import store
from gmval.data import load_digits
from gmval.images import ImageSet, to_float
from gmval.models import zoo
from gmval.models.classifier import train_classifier
from gmval.models.fid import classifier_frechet_distance, frechet_distance
from gmval.models.gan import DCGANDiscriminator, DCGANGenerator, GANConfig, GANTask, train_gan
from gmval.models.training import (
    CHECKPOINT,
    Batch,
    TrainConfig,
    TrainTask,
    list_snapshots,
    load_checkpoint,
    save_checkpoint,
    seeded_init,
    train,
)
from gmval.models.vae import BetaVAE, VAEConfig, VAETask, train_vae
from gmval.precision import forward_precision
from gmval.profiles import PROFILES, get_profile
from gmval.store import CacheError


class Interrupt(Exception):
    """Stands in for a kill in the middle of a run."""


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return load_digits()


@pytest.fixture(scope="module")
def tiny(digits: ImageSet) -> ImageSet:
    return digits.subset(range(64), name="tiny")


def _weights(task: TrainTask) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v for n, m in task.modules().items() for k, v in m.state_dict().items()}


def _stop_at(step: int) -> Any:
    def hook(batch: Batch, metrics: dict[str, float]) -> None:
        if batch.step + 1 == step:
            raise Interrupt

    return hook


def _vae_task(seed: int = 0) -> VAETask:
    return VAETask(seeded_init(seed, lambda: BetaVAE(VAEConfig(1, 8))), "adam", 1e-3)


def _gan_task(seed: int = 0, augment: str = "") -> GANTask:
    cfg = GANConfig(1, 8)
    return GANTask(seeded_init(seed, lambda: DCGANGenerator(cfg)),
                   seeded_init(seed + 1, lambda: DCGANDiscriminator(cfg)), augment=augment)


def _augmented_gan_task(seed: int = 0) -> GANTask:
    return _gan_task(seed, augment="translation,cutout")


def _diffusion_task(seed: int = 0) -> Any:
    from gmval.models.diffusion import ConditionalDiffusion, DiffusionConfig, DiffusionTask

    cfg = DiffusionConfig(1, 8, 10, block_out_channels=(8, 16, 16), attention=(False, False, True))
    return DiffusionTask(seeded_init(seed, lambda: ConditionalDiffusion(cfg, sampling_steps=3)), lr=1e-3,
                         ema_decay=0.9)


# ---------------------------------------------------------------- training loop


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("make", [_vae_task, _gan_task, _augmented_gan_task, _diffusion_task],
                         ids=["vae", "gan", "gan-diffaugment", "diffusion"])
def test_resume_continues_exactly(make: Any, precision: str, tiny: ImageSet, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=16, seed=3, checkpoint_seconds=0, keep_every=3, history_every=2,
                         precision=precision)
    whole = make()
    full = train(whole, tiny, config, tmp_path / "whole", {"m": 1}, progress=False)
    assert full.steps == 8 and [s for s, _ in full.snapshots] == [3, 6]

    cut = make()
    with pytest.raises(Interrupt):
        train(cut, tiny, config, tmp_path / "cut", {"m": 1}, progress=False, on_step=_stop_at(5))
    resumed = make()  # a fresh process: new modules, new optimizers
    step, history, _ = load_checkpoint(tmp_path / "cut" / CHECKPOINT, resumed)
    assert step == 5 and len(history) == 2
    for opt in resumed.optimizers().values():
        assert all(float(s["step"]) == 5 for s in opt.state_dict()["state"].values())
    again = train(resumed, tiny, config, tmp_path / "cut", {"m": 1}, progress=False)

    assert again.history == full.history
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    assert [s for s, _ in again.snapshots] == [3, 6]


def test_bf16_training_is_autocast_and_leaves_float32_contiguous_weights(tiny: ImageSet, tmp_path: Path) -> None:
    runs = {}
    for precision in ("fp32", "bf16"):
        task = _gan_task()
        dtypes: set[torch.dtype] = set()
        hook = task.d.net[0].register_forward_hook(lambda mod, inp, out, seen=dtypes: seen.add(out.dtype))
        train(task, tiny, TrainConfig(epochs=1, batch_size=16, precision=precision), tmp_path / precision, {"m": 1},
              progress=False)
        hook.remove()
        assert dtypes == {torch.float32 if precision == "fp32" else torch.bfloat16}
        weights = _weights(task)
        assert all(w.is_contiguous() for w in weights.values())
        assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())
        runs[precision] = weights
    assert any(not torch.equal(runs["fp32"][k], runs["bf16"][k]) for k in runs["fp32"])


def test_train_config_wants_a_resolved_precision() -> None:
    with pytest.raises(ValueError, match="resolved"):
        TrainConfig(epochs=1, batch_size=16, precision="auto")


def test_finished_run_loads_without_training(tiny: ImageSet, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, seed=0, checkpoint_seconds=0)
    trained = _vae_task()
    train(trained, tiny, config, tmp_path, {"m": 1}, progress=False)
    fresh = _vae_task(seed=9)  # other initial weights: loading must overwrite them
    steps: list[int] = []
    train(fresh, tiny, config, tmp_path, {"m": 1}, progress=False, on_step=lambda b, m: steps.append(b.step))
    assert steps == []
    a, b = _weights(trained), _weights(fresh)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_write_is_atomic(tiny: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = _vae_task()
    config = TrainConfig(epochs=1, batch_size=16, seed=0, checkpoint_seconds=0)
    train(task, tiny, config, tmp_path, {"m": 1}, progress=False)
    before = (tmp_path / CHECKPOINT).read_bytes()

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # dies after the temp file is written, before it is renamed

    monkeypatch.setattr(store.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / CHECKPOINT, task, 99, [], {})
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT, "params.json"]
    assert load_checkpoint(tmp_path / CHECKPOINT, _vae_task())[0] == 4


def test_run_folder_is_keyed_by_parameters(tiny: ImageSet, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, seed=0, checkpoint_seconds=0)
    train_vae(tiny, tmp_path, VAEConfig(1, 8), config, lr=1e-3, progress=False)
    with pytest.raises(CacheError, match="other parameters"):
        train_vae(tiny, tmp_path, VAEConfig(1, 8), config, lr=1e-2, progress=False)
    with pytest.raises(CacheError, match="other parameters"):
        train_vae(tiny.subset(range(32)), tmp_path, VAEConfig(1, 8), config, lr=1e-3, progress=False)
    # How often checkpoints are written is not part of a run's identity.
    slower = TrainConfig(epochs=1, batch_size=16, seed=0, checkpoint_seconds=600)
    train_vae(tiny, tmp_path, VAEConfig(1, 8), slower, lr=1e-3, progress=False)


# ---------------------------------------------------------------- models


def test_vae_loss_is_per_sample_and_has_no_batchnorm(tiny: ImageSet) -> None:
    vae = seeded_init(0, lambda: BetaVAE(VAEConfig(1, 8, beta=4.0)))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in vae.modules())
    x = tiny.images[:6].float() / 255
    eps = torch.randn(6, 3, 32, generator=torch.Generator().manual_seed(0))
    losses = vae.loss(x, eps=eps)
    assert losses.shape == (6,) and torch.all(losses > 0)
    # One image's loss does not depend on the rest of its batch.
    torch.testing.assert_close(vae.loss(x[2:3], eps=eps[2:3]), losses[2:3])
    gaussian = seeded_init(0, lambda: BetaVAE(VAEConfig(1, 8, likelihood="gaussian")))
    assert gaussian.loss(x, eps=eps).shape == (6,)


def test_gan_matches_table_11_at_mnist_size() -> None:
    g, d = DCGANGenerator(GANConfig(1, 28)), DCGANDiscriminator(GANConfig(1, 28))
    assert (g.net[0].in_features, g.net[0].out_features) == (100, 8192)
    assert (d.net[-4].in_features, d.net[-4].out_features) == (8192, 1024)
    g.eval(), d.eval()
    with torch.no_grad():
        fake = g(torch.zeros(2, 100))
        assert fake.shape == (2, 1, 28, 28) and d(fake).shape == (2,)


def test_vae_and_gan_train_and_sample_reproducibly(tiny: ImageSet, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, seed=0)
    vae, run = train_vae(tiny, tmp_path / "vae", VAEConfig(1, 8), config, progress=False)
    gan, _ = train_gan(tiny, tmp_path / "gan", GANConfig(1, 8), config, progress=False)
    assert np.isfinite(run.history[-1]["loss"])
    for model in (vae, gan):
        a = model.generate(10, seed=5)
        assert a.dtype == torch.uint8 and a.shape == (10, 1, 8, 8)
        assert torch.equal(a, model.generate(10, seed=5, batch_size=3))
        assert not torch.equal(a, model.generate(10, seed=6))
        with pytest.raises(ValueError, match="unconditional"):
            model.generate(2, seed=0, labels=np.array([0, 1]))


def test_conditional_diffusion_samples_requested_classes(tiny: ImageSet, tmp_path: Path) -> None:
    from gmval.models.diffusion import DiffusionConfig, train_diffusion

    cfg = DiffusionConfig(1, 8, 10, block_out_channels=(8, 16, 16), attention=(False, False, True))
    model, run = train_diffusion(tiny, tmp_path, cfg, TrainConfig(epochs=1, batch_size=16, seed=0),
                                 sampling_steps=3, progress=False)
    assert run.steps == 4 and np.isfinite(run.history[-1]["loss"])
    labels = np.array([3, 1, 4, 1, 5])
    a = model.generate(5, seed=2, labels=labels)
    assert a.shape == (5, 1, 8, 8)
    assert torch.equal(a, model.generate(5, seed=2, labels=labels, batch_size=2))
    assert not torch.equal(a, model.generate(5, seed=2, labels=np.array([0, 0, 0, 0, 0])))
    # fp32 is the default; a bf16 UNet moves its outputs a little, not the images. (The images of
    # a model trained for four steps saturate at 0 and 255, so the UNet itself is compared.)
    assert torch.equal(a, model.generate(5, seed=2, labels=labels, precision="fp32"))
    bf16 = model.generate(5, seed=2, labels=labels, precision="bf16")
    assert bf16.dtype == torch.uint8 and bf16.shape == a.shape
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t, y = torch.full((5,), 500), torch.tensor(labels)
    with torch.no_grad():
        full = model(x, t, y).float()
        with forward_precision("bf16", torch.device("cpu")):
            half = model(x, t, y).float()
    assert not torch.equal(full, half) and np.corrcoef(full.flatten(), half.flatten())[0, 1] > 0.99
    with pytest.raises(ValueError, match="precision"):
        model.generate(5, seed=2, labels=labels, precision="fp16")
    with pytest.raises(ValueError, match="conditional"):
        model.generate(5, seed=2)
    with pytest.raises(ValueError, match="0..9"):
        model.generate(1, seed=2, labels=np.array([10]))


def test_classifier_trains_and_fd_behaves(digits: ImageSet, tmp_path: Path) -> None:
    train_set, test_set = digits.subset(range(1500)), digits.subset(range(1500, len(digits)))
    clf, run = train_classifier(train_set, tmp_path, TrainConfig(epochs=3, batch_size=64, seed=0), width=8,
                                lr=3e-3, progress=False)
    assert run.history[-1]["loss"] < run.history[0]["loss"]
    assert clf.accuracy(test_set) > 0.5
    assert clf.predict(test_set).shape == (len(test_set),)

    assert classifier_frechet_distance(clf, test_set, test_set) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)

    def noisy(std: float) -> ImageSet:
        x = test_set.images.numpy() / 255 + rng.normal(0, std, test_set.images.shape)
        return ImageSet(torch.from_numpy(np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)), test_set.ids)

    fds = [classifier_frechet_distance(clf, test_set, noisy(s)) for s in (0.05, 0.2, 0.5)]
    assert 0 < fds[0] < fds[1] < fds[2]


def test_frechet_distance_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = rng.normal(size=(4000, 3)) * 2.0 + 1.0
    # N(0, I) vs N(1, 4I) in 3-d: 3 * 1 + 3 * (1 + 4 - 2 * 2) = 6.
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.1)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :2])


# ---------------------------------------------------------------- profiles and zoo


def test_profiles_are_plain_data() -> None:
    assert set(PROFILES) == {"ci", "default", "paper"}
    for name in PROFILES:
        models = get_profile(name)["models"]
        assert {"vae", "gan", "diffusion", "classifier", "train_images", "quality_samples"} <= set(models)
        store.canonical(models)  # JSON-serialisable, hence hashable into cache keys
    edited = get_profile("ci")
    edited["models"]["seed"] = 99
    assert get_profile("ci")["models"]["seed"] == 0
    with pytest.raises(KeyError, match="available"):
        get_profile("nope")


@pytest.fixture()
def digits_zoo(digits: ImageSet, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ci profile, shrunk, with every dataset replaced by the 8x8 digits (1500 train / 297 test)."""
    splits = {"train": digits.subset(range(1500), name="digits-train"),
              "test": digits.subset(range(1500, len(digits)), name="digits-test")}
    monkeypatch.setattr(zoo, "load_split", lambda dataset, split: splits[split])
    profile = get_profile("ci")
    m = profile["models"]
    m.update(train_images=128, test_images=64, quality_samples=20, sample_batch=8)
    m["vae"].update(batch_size=32, keep_every=2)
    m["gan"].update(batch_size=32)
    m["diffusion"].update(batch_size=32, sampling_steps=2)
    m["classifier"].update(batch_size=32)
    return profile


def test_zoo_trains_caches_and_samples(digits_zoo: dict[str, Any], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    six = ["mnist-vae", "mnist-gan", "mnist-diffusion",
           "fashion-mnist-vae", "fashion-mnist-gan", "fashion-mnist-diffusion"]
    # The ci profile's capped models double as the motivation generators; the paper's are their own.
    assert zoo.generator_names(digits_zoo) == six + ["noisy-mnist-gan"]
    assert zoo.generator_names("paper") == (
        [n.replace("fashion-mnist", "cifar10") for n in six]
        + ["motivation-gan", "motivation-diffusion", "noisy-mnist-gan"])

    vae = zoo.sample("mnist-vae", 12, seed=0, profile=digits_zoo, root=tmp_path, progress=False)
    assert len(vae) == 12 and vae.labels is not None and vae.labels.max() < 10
    folder = zoo.generator_folder("mnist-vae", digits_zoo, tmp_path)
    assert folder.parent == tmp_path / "models" and folder.name.startswith("mnist-vae-")
    assert [s for s, _ in list_snapshots(folder)] == [2, 4]

    diff = zoo.sample("mnist-diffusion", 12, seed=0, profile=digits_zoo, root=tmp_path, progress=False)
    np.testing.assert_array_equal(diff.labels, np.arange(12) % 10)
    # The sampling precision keys the samples, not the model.
    def sampled_in(precision: str) -> dict[str, Any]:
        diffusion = {**digits_zoo["models"]["diffusion"], "sampling_precision": precision}
        return {**digits_zoo, "models": {**digits_zoo["models"], "diffusion": diffusion}}
    diffusion_folder = zoo.generator_folder("mnist-diffusion", digits_zoo, tmp_path)
    assert all(zoo.generator_folder("mnist-diffusion", sampled_in(p), tmp_path) == diffusion_folder
               for p in ("fp32", "bf16"))
    fp32, bf16 = (zoo.sample("mnist-diffusion", 12, seed=0, profile=sampled_in(p), root=tmp_path, progress=False)
                  for p in ("fp32", "bf16"))
    assert not torch.equal(fp32.images, bf16.images)
    assert len(list((tmp_path / "cache" / "samples").glob("mnist-diffusion-samples-*"))) >= 2

    # Cached: no generator is built again, and the images are the same bytes.
    get_generator = zoo.get_generator
    monkeypatch.setattr(zoo, "get_generator", lambda *a, **k: pytest.fail("sample cache missed"))
    again = zoo.sample("mnist-vae", 12, seed=0, profile=digits_zoo, root=tmp_path, progress=False)
    assert torch.equal(again.images, vae.images) and np.array_equal(again.labels, vae.labels)
    monkeypatch.setattr(zoo, "get_generator", get_generator)
    # Poor samples (C3, Fig. 9): the cached good ones unchanged, then noise-corrupted further samples.
    mixed, is_poor = zoo.sample_with_poor("mnist-vae", 12, seed=0, poor=4, noise_std=0.5, profile=digits_zoo,
                                          root=tmp_path, progress=False)
    assert len(mixed) == 16 and is_poor.tolist() == [False] * 12 + [True] * 4
    assert np.array_equal(mixed.ids, np.arange(16)) and torch.equal(mixed.images[:12], vae.images)
    clean = zoo.sample("mnist-vae", 4, seed=1, profile=digits_zoo, root=tmp_path, progress=False)
    assert mixed.images.dtype == clean.images.dtype
    noise = (mixed.images[12:].double() - clean.images.double()).std().item() / 255
    assert 0.2 < noise < 0.6

    report = zoo.quality("mnist-diffusion", digits_zoo, tmp_path, progress=False)
    assert report["samples"] == 20 and report["fd"] >= 0 and report["fd_real"] >= 0
    assert 0 <= report["class_accuracy"] <= 1 and sum(report["class_histogram"]) == 20
    # Real images beside the gate: the same classifier on as many real training images.
    assert 0 <= report["confident_share_real"] <= 1 and report["class_count_ratio_real"] >= 1
    _, clf_report = zoo.get_classifier("mnist", digits_zoo, tmp_path, progress=False)
    assert report["classifier_test_accuracy"] == clf_report["test_accuracy"] and clf_report["test_images"] == 64

    # A changed training setting is a different model; a changed checkpoint cadence is not.
    longer = {**digits_zoo, "models": {**digits_zoo["models"], "vae": {**digits_zoo["models"]["vae"], "epochs": 2}}}
    assert zoo.generator_folder("mnist-vae", longer, tmp_path) != folder
    cadence = {**digits_zoo, "models": {**digits_zoo["models"], "checkpoint_seconds": 1.0}}
    assert zoo.generator_folder("mnist-vae", cadence, tmp_path) == folder


def test_zoo_curated_training_sets(digits_zoo: dict[str, Any]) -> None:
    split = zoo.load_split("fashion-mnist", "train")
    full = zoo.training_data("fashion-mnist-gan", digits_zoo).train
    half = zoo.training_data("motivation-gan", digits_zoo).train
    # A motivation generator is trained on X_v2 alone; X_v1 is the class's other half.
    held_out, kept = zoo.class_halves("motivation-gan", digits_zoo)
    assert set(held_out.labels) == {0} and set(kept.labels) == {0} and set(half.labels) == {0}
    assert set(half.ids) == set(kept.ids) and not set(half.ids) & set(held_out.ids)
    assert set(half.ids) | set(held_out.ids) == set(full.ids[full.labels == 0])
    assert abs(len(held_out) - len(kept)) <= 1
    # Its training length is its own: a few hundred images need many more epochs to be memorised.
    assert zoo._plan("motivation-gan", digits_zoo, None).train_config.epochs == digits_zoo["models"]["half_class"][
        "epochs"]["gan"]
    # A capped generator of the whole split: X_v1 is drawn from what the cap left out.
    unseen, seen = zoo.class_halves("fashion-mnist-gan", digits_zoo)
    assert len(unseen) == len(seen) == int((full.labels == 0).sum())
    assert set(seen.ids) == set(full.ids[full.labels == 0])
    assert not set(unseen.ids) & set(full.ids) and set(unseen.labels) == {0}
    np.testing.assert_array_equal(unseen.images.numpy(), split.images[torch.from_numpy(unseen.ids)].numpy())
    assert zoo.class_halves("fashion-mnist-diffusion", digits_zoo)[0].ids.tolist() == unseen.ids.tolist()
    uncapped = {**digits_zoo, "models": {**digits_zoo["models"], "train_images": None}}
    with pytest.raises(ValueError, match="no unseen half.*motivation-gan"):
        zoo.class_halves("fashion-mnist-gan", uncapped)
    with pytest.raises(ValueError, match="noisy"):
        zoo.class_halves("noisy-mnist-gan", digits_zoo)
    noisy = zoo.training_data("noisy-mnist-gan", digits_zoo)
    assert noisy.noisy_ids is not None and len(noisy.noisy_ids) == 16 and len(noisy.train) == 128 + 16
    assert set(noisy.noisy_ids) <= set(noisy.train.ids)
    with pytest.raises(KeyError, match="available"):
        zoo.training_data("nope", digits_zoo)


def test_half_class_overrides_reach_the_motivation_gan_alone(digits_zoo: dict[str, Any]) -> None:
    overrides = digits_zoo["models"]["half_class"]["overrides"]
    assert overrides["gan"] == {"augment": "translation,cutout"}  # every profile inherits the default's
    overrides["gan"] = {}
    plain = {name: zoo._plan(name, digits_zoo, None) for name in ("motivation-gan", "fashion-mnist-gan")}
    assert all("augment" not in plan.hyper for plan in plain.values())
    overrides["gan"] = {"augmnt": "translation"}
    with pytest.raises(KeyError, match=r"half_class.overrides.gan: \['augmnt'\]"):
        zoo._plan("motivation-gan", digits_zoo, None)
    overrides["gan"] = {"augment": "translation,cutout", "lr": 1e-4}
    motivation = zoo._plan("motivation-gan", digits_zoo, None)
    assert motivation.hyper == {"lr": 1e-4, "ema_decay": plain["motivation-gan"].hyper["ema_decay"],
                                "augment": "translation,cutout"}
    assert motivation.folder != plain["motivation-gan"].folder
    # The full-dataset GAN keeps its settings and so its key (its committed weights stay valid).
    assert zoo._plan("fashion-mnist-gan", digits_zoo, None).folder == plain["fashion-mnist-gan"].folder


def test_diffaugment_changes_the_gan_step_reproducibly(tiny: ImageSet) -> None:
    batch = Batch(x=to_float(tiny.images[:16]), y=None, index=torch.arange(16), step=0)
    plain, augmented, again = (make().step(batch, torch.Generator().manual_seed(5))
                               for make in (_gan_task, _augmented_gan_task, _augmented_gan_task))
    assert augmented == again and augmented["loss_d"] != plain["loss_d"]


def test_zoo_trains_curated_generators(digits_zoo: dict[str, Any], tmp_path: Path) -> None:
    for name in ("motivation-gan", "noisy-mnist-gan"):
        model = zoo.get_generator(name, digits_zoo, tmp_path, progress=False)
        assert model.generate(3, seed=0).shape == (3, 1, 8, 8)
        assert zoo.generator_folder(name, digits_zoo, tmp_path).is_dir()


def test_zoo_samples_one_class(digits_zoo: dict[str, Any], tmp_path: Path) -> None:
    # Unconditional: the draws the classifier finds most likely to be of the class are kept.
    clf = zoo.get_classifier("fashion-mnist", digits_zoo, tmp_path, progress=False)[0]
    plain = zoo.sample("motivation-gan", 60, 0, digits_zoo, tmp_path, progress=False)
    label = int(np.bincount(plain.labels, minlength=10).argmin())
    picked = zoo.sample("motivation-gan", 6, seed=3, profile=digits_zoo, root=tmp_path, progress=False, label=label)
    assert len(picked) == 6
    np.testing.assert_array_equal(picked.labels, clf.predict(picked.images))
    prob = lambda x: torch.softmax(torch.from_numpy(clf.logits(x)), 1)[:, label].numpy()  # noqa: E731
    assert prob(picked.images).min() >= np.median(prob(plain.images))
    again = zoo.sample("motivation-gan", 6, seed=3, profile=digits_zoo, root=tmp_path, progress=False, label=label)
    assert torch.equal(again.images, picked.images)
    # Conditional: the generator is asked for the class.
    cond = zoo.sample("mnist-diffusion", 4, seed=0, profile=digits_zoo, root=tmp_path, progress=False, label=7)
    np.testing.assert_array_equal(cond.labels, [7, 7, 7, 7])
    with pytest.raises(ValueError, match="not a class"):
        zoo.sample("mnist-diffusion", 4, seed=0, profile=digits_zoo, root=tmp_path, progress=False, label=10)
