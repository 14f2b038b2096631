"""Committed generator weights: export, hash-checked install, recipe keys, and the GAN's weight average."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gmval.data import load_digits
from gmval.models import gan, pretrained, zoo
from gmval.models.training import (
    FINAL,
    PARAMS,
    ema_decay_at,
    finished_weights,
    list_snapshots,
    load_weights,
    update_ema,
)
from gmval.profiles import get_profile
from gmval.store import CacheError


@pytest.fixture
def digits_zoo(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ci profile on sklearn's 8x8 digits, shrunk to a few steps."""
    digits = load_digits()
    splits = {"train": digits.subset(range(1500), name="digits-train"),
              "test": digits.subset(range(1500, len(digits)), name="digits-test")}
    monkeypatch.setattr(zoo, "load_split", lambda dataset, split: splits[split])
    monkeypatch.delenv("GMVAL_RETRAIN", raising=False)
    profile = get_profile("ci")
    m = profile["models"]
    m.update(train_images=128, test_images=64, quality_samples=20, sample_batch=8)
    m["gan"].update(batch_size=32, ema_decay=0.9)
    m["classifier"].update(batch_size=32)
    return profile


def test_ema_warms_up_averages_buffers_and_copies_counters() -> None:
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10**6) == 0.999
    live, avg = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        live.weight.fill_(2.0)
        live.running_mean.fill_(4.0)
    live.num_batches_tracked.fill_(7)
    update_ema(avg, live, decay=0.5, step=10**6)
    assert torch.allclose(avg.weight, torch.full((3,), 1.5))          # 1 -> halfway to 2
    assert torch.allclose(avg.running_mean, torch.full((3,), 2.0))    # 0 -> halfway to 4
    assert int(avg.num_batches_tracked) == 7


def test_gan_samples_from_its_weight_average(digits_zoo: dict[str, Any], tmp_path: Path) -> None:
    sampler = zoo.get_generator("mnist-gan", digits_zoo, tmp_path, progress=False)
    folder = zoo.generator_folder("mnist-gan", digits_zoo, tmp_path)
    live = gan.DCGANGenerator(sampler.config)
    load_weights(finished_weights(folder), {"generator": live})
    average = gan.DCGANGenerator(sampler.config)
    load_weights(finished_weights(folder), {"generator_ema": average})
    assert all(torch.equal(a, b) for a, b in zip(sampler.state_dict().values(), average.state_dict().values(),
                                                  strict=True))
    assert not torch.equal(next(live.parameters()), next(average.parameters()))


def test_recipe_version_keys_the_model(digits_zoo: dict[str, Any], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = zoo.generator_folder("mnist-gan", digits_zoo, tmp_path)
    monkeypatch.setattr(gan, "RECIPE", gan.RECIPE + 1)
    assert zoo.generator_folder("mnist-gan", digits_zoo, tmp_path) != before


def _export_gan(profile: dict[str, Any], root: Path, shipped: Path, modules: list[str]) -> torch.Tensor:
    """Train mnist-gan under ``root``, commit it to ``shipped``; returns its samples."""
    samples = zoo.sample("mnist-gan", 6, seed=0, profile=profile, root=root, progress=False).images
    folder = zoo.generator_folder("mnist-gan", profile, root)
    params = json.loads((folder / PARAMS).read_text())
    shipped.mkdir()
    pretrained.export(folder.name, params, finished_weights(folder), record={"profile": "test"}, modules=modules,
                      directory=shipped)
    return samples


def test_committed_weights_install_verified_and_sample_alike(digits_zoo: dict[str, Any], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "shipped"
    trained = _export_gan(digits_zoo, tmp_path / "a", shipped, modules=["generator_ema"])
    monkeypatch.setattr(pretrained, "DIR", shipped)
    root = tmp_path / "b"
    folder = zoo.generator_folder("mnist-gan", digits_zoo, root)
    got = zoo.sample("mnist-gan", 6, seed=0, profile=digits_zoo, root=root, progress=False).images
    assert torch.equal(got, trained)
    assert pretrained.is_installed(folder) and (folder / FINAL).is_file()
    assert pretrained.weights_source(folder).startswith("pretrained:")
    # Only the sampling modules ship: reading the live pair says so, by name.
    with pytest.raises(CacheError, match="no module 'discriminator'.*retrain"):
        load_weights(finished_weights(folder), {"discriminator": gan.DCGANDiscriminator(gan.GANConfig(1, 8))})


def test_altered_committed_weights_are_refused(digits_zoo: dict[str, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "shipped"
    _export_gan(digits_zoo, tmp_path / "a", shipped, modules=["generator_ema"])
    file = next(shipped.glob("*.safetensors"))
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "DIR", shipped)
    with pytest.raises(CacheError, match="sha256"):
        zoo.get_generator("mnist-gan", digits_zoo, tmp_path / "b", progress=False)
    assert not zoo.generator_folder("mnist-gan", digits_zoo, tmp_path / "b").exists()


def test_retraining_replaces_installed_weights(digits_zoo: dict[str, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "shipped"
    _export_gan(digits_zoo, tmp_path / "a", shipped, modules=["generator_ema"])
    monkeypatch.setattr(pretrained, "DIR", shipped)
    root = tmp_path / "b"
    folder = zoo.generator_folder("mnist-gan", digits_zoo, root)
    zoo.get_generator("mnist-gan", digits_zoo, root, progress=False)
    assert pretrained.is_installed(folder)
    monkeypatch.setenv("GMVAL_RETRAIN", "1")
    zoo.get_generator("mnist-gan", digits_zoo, root, progress=False)
    assert not pretrained.is_installed(folder) and finished_weights(folder).name == "checkpoint.safetensors"
    assert pretrained.weights_source(folder) == "trained"


def test_a_run_trained_here_is_never_overwritten(digits_zoo: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "shipped"
    _export_gan(digits_zoo, tmp_path / "a", shipped, modules=["generator_ema"])
    monkeypatch.setattr(pretrained, "DIR", shipped)
    assert not pretrained.install(zoo.generator_folder("mnist-gan", digits_zoo, tmp_path / "a"))
    assert pretrained.entry("nope-0123") is None
    np.testing.assert_equal(sorted(pretrained.manifest()), [zoo.generator_folder("mnist-gan", digits_zoo,
                                                                                   tmp_path / "a").name])


@pytest.mark.parametrize("name", ["mnist-gan", "mnist-vae"])
def test_a_curve_snapshot_is_the_shorter_run(name: str, digits_zoo: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from gmval.models import curve

    digits_zoo["models"]["vae"].update(batch_size=32, keep_every=4)  # one snapshot per epoch of 4 steps
    folder = curve.train_curve(name, digits_zoo, 3, root=tmp_path / "curve")
    assert len(list(folder.glob("snapshots/*.safetensors"))) == 3
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    scored = pd.DataFrame({"generator": name, "epoch": [1, 2, 3], "fd": [9.0, 4.0, float("nan")]})
    record = curve.export_record(name, digits_zoo, 3, 2, scored, "abc1234", root=tmp_path / "curve")
    assert record["epochs"] == 2 and record["quality"] == {"fd": 4.0} and record["code_commit"] == "abc1234"
    assert 0 <= record["training_wall_seconds"]
    with pytest.raises(ValueError, match="0 rows for epoch 5"):
        curve.export_record(name, digits_zoo, 3, 5, scored, "abc1234", root=tmp_path / "curve")
    curve.export_snapshot(name, digits_zoo, 3, 2, record, root=tmp_path / "curve", directory=shipped)
    two = curve.with_epochs(name, digits_zoo, 2)
    direct = zoo.get_generator(name, two, tmp_path / "direct", progress=False)
    monkeypatch.setattr(pretrained, "DIR", shipped)
    installed = zoo.get_generator(name, two, tmp_path / "installed", progress=False)
    assert pretrained.is_installed(zoo.generator_folder(name, two, tmp_path / "installed"))
    for a, b in zip(direct.state_dict().values(), installed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if name == "mnist-vae":  # VAE-TracIn's snapshots come along
        steps = [s for s, _ in list_snapshots(zoo.generator_folder(name, two, tmp_path / "installed"))]
        assert steps == [4, 8]


def test_the_committed_weights_match_their_manifest_and_the_current_code() -> None:
    entries = pretrained.manifest()
    total = 0
    for key, record in entries.items():
        item = pretrained.entry(key)
        assert item is not None and pretrained.verified(item) == item.file
        total += item.file.stat().st_size
        # The key is the model's config hash under the current code and profile: a changed recipe or
        # training length must retrain and re-export, or the run would silently train from scratch.
        name, profile = record["params"]["name"], record["profile"]
        assert key == zoo.generator_folder(name, profile).name, f"{key} is stale for the current code"
    assert total <= 100 * 2**20
