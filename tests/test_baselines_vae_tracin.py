"""VAE-TracIn on a tiny β-VAE trained for a few steps on 16x16 sklearn digits (seconds, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from gmval.attribution import Attribution, create_attributor
from gmval.baselines import VAETracIn, gradients
from gmval.baselines import vae_tracin as vt
from gmval.evaluation import identical_class_ratio
from gmval.images import ImageSet
from gmval.models.training import TrainConfig
from gmval.models.vae import VAEConfig, train_vae
from gmval.profiles import PROFILES, get_profile

DRAWS = 4  # the reference's 16 quadruples the cost; 4 keeps the file fast and the tests meaningful
LR, BATCH = 3e-3, 16


@pytest.fixture(scope="module")
def train(digits16: ImageSet) -> ImageSet:
    return digits16.subset(range(96), "tracin-train")


@pytest.fixture(scope="module")
def run(train: ImageSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAE trained for 24 steps with snapshots at steps 8, 16 and 24."""
    folder = tmp_path_factory.mktemp("vae-run")
    config = TrainConfig(epochs=4, batch_size=BATCH, seed=0, checkpoint_seconds=0, keep_every=8)
    train_vae(train, folder, VAEConfig(1, 16, latent_dim=8, hidden=32), config, lr=LR, progress=False)
    return folder


@pytest.fixture(scope="module")
def duplicates(train: ImageSet) -> tuple[np.ndarray, ImageSet]:
    """Every fourth training image, copied as a query (with an id of its own)."""
    pos = np.arange(0, 96, 4)
    copies = train.subset(pos)
    return pos, ImageSet(copies.images.clone(), np.arange(len(pos)), copies.labels, name="copies")


@pytest.fixture(scope="module")
def exact(run: Path, train: ImageSet, duplicates: tuple[np.ndarray, ImageSet]) -> Attribution:
    return VAETracIn(draws=DRAWS, cache_dir=None, progress=False).fit(train, run).score(duplicates[1])


def test_duplicate_is_its_own_strongest_proponent(exact: Attribution, duplicates: tuple[np.ndarray, ImageSet]
                                                  ) -> None:
    pos, _ = duplicates
    top = exact.top_k(10)
    assert top.shape == (len(pos), 10)
    assert (top[:, 0] == pos).mean() >= 0.5, f"self top-1 only for {(top[:, 0] == pos).mean():.0%}"
    assert np.mean([p in row[:5] for p, row in zip(pos, top, strict=True)]) >= 0.9
    # The proponents are ordered by descending score.
    assert (np.diff(np.take_along_axis(exact.matrix(), top, axis=1), axis=1) <= 0).all()


def test_result_layout_and_weights(exact: Attribution, train: ImageSet, tmp_path: Path) -> None:
    cfg = exact.config
    assert exact.method == "vae-tracin" and exact.n_train == 96
    assert exact.scores.shape == (24, 96) and exact.scores.dtype == np.float64
    np.testing.assert_array_equal(exact.index, np.tile(np.arange(96), (24, 1)))
    assert cfg["snapshots_used"] == [8, 16, 24] and cfg["reductions"] == []
    # w_c = η·B·ΔT/N with ΔT = 8 for every snapshot.
    np.testing.assert_allclose(cfg["checkpoint_weights"], [LR * BATCH * 8 / 96] * 3)
    np.testing.assert_allclose(exact.values, exact.scores.sum(axis=0))
    assert {"total", "train_gradients", "query_gradients", "scores"} <= exact.timings.keys()
    assert exact.timings["total"] >= exact.timings["train_gradients"] > 0
    saved = np.load(exact.save(tmp_path)["scores"])
    np.testing.assert_array_equal(saved["scores"], exact.scores)
    np.testing.assert_array_equal(saved["index"], exact.index)


def test_registered_name_builds_the_same_method(run: Path, train: ImageSet, duplicates: tuple[np.ndarray, ImageSet],
                                                exact: Attribution) -> None:
    again = create_attributor("vae-tracin", draws=DRAWS, cache_dir=None, progress=False).fit(train, run)
    np.testing.assert_array_equal(again.score(duplicates[1]).scores, exact.scores)


def test_snapshot_weights_follow_the_used_steps(run: Path, train: ImageSet) -> None:
    one = VAETracIn(snapshots=1, cache_dir=None, progress=False).fit(train, run)
    assert [s for s, _ in one.used] == [24]
    assert vt.checkpoint_weights([24], LR, BATCH, 96) == pytest.approx([LR * BATCH * 24 / 96])
    assert [s for s, _ in vt.select_snapshots(one.available, 2)] == [8, 24]


def test_projection_agrees_with_exact_scores(run: Path, train: ImageSet, duplicates: tuple[np.ndarray, ImageSet],
                                             exact: Attribution) -> None:
    projected = VAETracIn(draws=DRAWS, projection_dim=256, cache_dir=None, progress=False).fit(
        train, run).score(duplicates[1])
    rho = [spearmanr(exact.scores[j], projected.scores[j])[0] for j in range(exact.n_generated)]
    assert np.mean(rho) > 0.9, rho
    assert projected.config["projection"]["dim"] == 256
    assert projected.config["reductions"][0].startswith("gradients projected to 256 dimensions")


def test_projection_is_a_fixed_linear_map() -> None:
    proj = gradients.RademacherProjection(dim=64, num_params=gradients.PROJECTION_BLOCK + 100, seed=3)
    g = torch.randn(5, proj.num_params)
    out = proj(g)
    np.testing.assert_allclose(proj(g[2:3]).numpy(), out[2:3].numpy(), rtol=1e-4, atol=1e-3)
    again = gradients.RademacherProjection(dim=64, num_params=proj.num_params, seed=3)
    assert torch.equal(again(g), out)
    other = gradients.RademacherProjection(dim=64, num_params=proj.num_params, seed=4)
    assert not torch.allclose(other(g), out)
    # Inner products are preserved on average: E[(Rx)·(Ry)] = x·y.
    ratio = (out * out).sum(1) / (g * g).sum(1)
    assert torch.all((ratio > 0.5) & (ratio < 1.5))


def test_identical_class_ratio_accepts_the_result(run: Path, train: ImageSet, digits16: ImageSet) -> None:
    queries = digits16.subset(range(1500, 1510), "held-out")
    result = VAETracIn(draws=DRAWS, snapshots=1, cache_dir=None, progress=False).fit(train, run).score(queries)
    rho = identical_class_ratio(result, train.labels, queries.labels, ks=(5, 20))
    top = result.top_k(20)
    expected = [(train.labels[top[:, :k]] == queries.labels[:, None]).mean() for k in (5, 20)]
    assert list(rho.index) == [5, 20]
    np.testing.assert_allclose(rho.to_numpy(), expected)


def test_subset_rows_match_the_full_run(run: Path, train: ImageSet, duplicates: tuple[np.ndarray, ImageSet],
                                        exact: Attribution) -> None:
    sub = VAETracIn(draws=DRAWS, train_subset=40, cache_dir=None, progress=False).fit(train, run).score(
        duplicates[1])
    rows = sub.index[0]
    assert sub.scores.shape == (24, 40) and (sub.index == rows).all()
    assert np.isin(sub.top_k(10), rows).all()
    # Unscored training images count 0 in the dense matrix and the values.
    assert (sub.matrix()[:, np.setdiff1d(np.arange(96), rows)] == 0).all()
    assert (sub.values[np.setdiff1d(np.arange(96), rows)] == 0).all()
    # Noise depends on the image's position only, so a subset scores its rows as the full run does.
    np.testing.assert_allclose(sub.scores, exact.scores[:, rows], rtol=1e-4,
                               atol=1e-6 * np.abs(exact.scores).max())
    assert "training subset: 40 of 96 images" in sub.config["reductions"][0]
    labels = train.labels[rows]
    assert sorted(np.unique(labels)) == sorted(np.unique(train.labels))  # stratified


@pytest.mark.parametrize("projection_dim", [None, 32], ids=["exact", "projected"])
def test_cache_reuse_and_invalidation(run: Path, train: ImageSet, duplicates: tuple[np.ndarray, ImageSet],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      projection_dim: int | None) -> None:
    queries = duplicates[1].subset(range(4))
    kwargs = {"draws": 2, "snapshots": 1, "train_subset": 32, "projection_dim": projection_dim,
              "cache_dir": tmp_path, "progress": False}
    first = VAETracIn(**kwargs).fit(train, run).score(queries)
    folders = sorted(p.name for p in tmp_path.iterdir())

    def refuse(*args: object) -> torch.Tensor:
        raise AssertionError("a cached stage was recomputed")

    monkeypatch.setattr(VAETracIn, "per_sample_gradients", refuse)
    again = VAETracIn(**kwargs).fit(train, run).score(queries)
    np.testing.assert_array_equal(again.scores, first.scores)
    assert sorted(p.name for p in tmp_path.iterdir()) == folders
    monkeypatch.undo()

    changed = VAETracIn(**{**kwargs, "draws": 3}).fit(train, run).score(queries)
    assert not np.allclose(changed.scores, first.scores)
    assert len(list(tmp_path.iterdir())) > len(folders)


def test_mse_loss_is_the_reference_formula(run: Path, train: ImageSet) -> None:
    tracin = VAETracIn(loss="mse", cache_dir=None, progress=False).fit(train, run)
    x = train.images[:3].float() / 255
    eps = gradients.image_noise(0, 0, np.arange(3), 5, 8)
    mu, logvar = tracin.vae.encode(x)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
    sq = torch.stack([(tracin.vae.decode(z[:, s]) - x).pow(2).flatten(1).sum(1) for s in range(5)], 1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    expected = (sq + tracin.vae.config.beta * kl[:, None]).sum(1) / (5 * 12288)
    torch.testing.assert_close(vt.reference_mse_loss(tracin.vae, x, eps), expected)


def test_bad_inputs_raise_clear_errors(run: Path, train: ImageSet, digits16: ImageSet, tmp_path: Path) -> None:
    empty = tmp_path / "no-snapshots"
    empty.mkdir()
    (empty / "params.json").write_text((run / "params.json").read_text())
    with pytest.raises(ValueError, match="no weight snapshots"):
        VAETracIn(cache_dir=None).fit(train, empty)
    with pytest.raises(ValueError, match="neither a zoo generator name nor a training run"):
        VAETracIn(cache_dir=None).fit(train, tmp_path / "missing")
    with pytest.raises(ValueError, match="needs a VAE"):
        VAETracIn(cache_dir=None).fit(train, "mnist-gan")
    with pytest.raises(ValueError, match="needs the trained β-VAE"):
        VAETracIn(cache_dir=None).fit(train)
    with pytest.raises(ValueError, match="loss must be one of"):
        VAETracIn(loss="l1", cache_dir=None)
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        VAETracIn(draws=0, cache_dir=None)
    with pytest.raises(RuntimeError, match="call fit"):
        VAETracIn(cache_dir=None).score(train)
    tracin = VAETracIn(draws=1, cache_dir=None, progress=False).fit(train, run)
    wrong = ImageSet(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), np.arange(2))
    with pytest.raises(ValueError, match=r"query images are \(1, 28, 28\); the VAE .* expects \(1, 16, 16\)"):
        tracin.score(wrong)
    with pytest.raises(ValueError, match="training images are"):
        VAETracIn(cache_dir=None).fit(wrong, run)
    with pytest.raises(ValueError, match="k=97 must be between 1 and the 96 training images vae-tracin scores"):
        tracin.score(train.subset(range(2))).top_k(97)
    with pytest.raises(ValueError, match="train_subset=500 exceeds the training set"):
        VAETracIn(train_subset=500, cache_dir=None, progress=False).fit(train, run)
    with pytest.warns(UserWarning, match="not the set the VAE"):
        VAETracIn(cache_dir=None).fit(digits16.subset(range(100, 130)), run)


def test_profiles_define_the_settings(run: Path, train: ImageSet) -> None:
    for name in PROFILES:
        settings = get_profile(name)["baselines"]["vae_tracin"]
        assert set(settings) == {"draws", "loss", "projection_dim", "snapshots", "train_subset", "seed",
                                 "chunk_size"}, name
    paper = get_profile("paper")["baselines"]["vae_tracin"]
    assert paper["draws"] == 16 and paper["train_subset"] is None and paper["snapshots"] is None
    assert paper["projection_dim"] is None
    ci = VAETracIn.from_profile("ci", cache_dir=None, progress=False)
    assert (ci.draws, ci.train_subset, ci.profile) == (4, 200, "ci")
    ci = VAETracIn.from_profile("ci", cache_dir=None, progress=False, train_subset=None).fit(train, run)
    assert (ci.draws, [s for s, _ in ci.used]) == (4, [24])
    # A profile dict works as a name does (the zoo's functions take either).
    edited = get_profile("ci")
    edited["baselines"]["vae_tracin"]["draws"] = 2
    assert VAETracIn.from_profile(edited, cache_dir=None, progress=False).draws == 2
