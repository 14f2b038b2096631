"""The staged valuator: the paper's invariants, caching, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gmval
from gmval.encoders import create_encoder
from gmval.encoders.pixels import PixelEncoder
from gmval.evaluation import identical_class_ratio
from gmval.images import ImageSet
from gmval.quality import create_quality_model
from gmval.quality.base import QualityModel
from gmval.valuator import Valuator

FAST_DISTANCES = ["none", "l2", "ssim"]


@pytest.mark.parametrize("encoder", ["pixels", "pca"])
@pytest.mark.parametrize("distance", FAST_DISTANCES)
def test_exact_copy_is_its_own_top_contributor(split, encoder: str, distance: str) -> None:
    train, _ = split
    copies = train.subset([3, 77, 1200, 1499], "copies")
    res = gmval.value(train, copies, encoder=encoder, rerank=distance, k=5, cache_dir=None, progress=False)
    np.testing.assert_array_equal(res.topk_indices()[:, 0], [3, 77, 1200, 1499])
    assert (res.contributors.query("rank == 1")["distance"] < 1e-5).all()


@pytest.mark.parametrize("distance", ["none", "effnet-features"])
def test_exact_copy_with_the_pretrained_cnn(split, distance: str) -> None:
    train, _ = split
    small = train.subset(range(300))
    copies = small.subset([5, 250])
    res = gmval.value(small, copies, encoder=("efficientnet-lite0", {"resolution": 32}),
                      rerank=(distance, {"resolution": 32}) if distance != "none" else distance,
                      k=3, cache_dir=None, progress=False)
    np.testing.assert_array_equal(res.topk_indices()[:, 0], [5, 250])


@pytest.mark.parametrize("quality", ["none", "realism"])
def test_contributions_sum_to_quality(split, quality: str) -> None:
    train, gen = split
    res = gmval.value(train, gen, encoder="pixels", rerank="l2", quality=quality, k=10, cache_dir=None,
                      progress=False)
    per_gen = res.contributors.groupby("generated_index").agg(total=("contribution", "sum"), q=("quality", "first"))
    np.testing.assert_allclose(per_gen["total"], per_gen["q"], rtol=1e-10)
    assert ((per_gen["q"] >= 0) & (per_gen["q"] <= 1)).all()
    assert res.values["value"].sum() == pytest.approx(per_gen["q"].sum())
    # Zero outside P_j: only contributors have value.
    picked = np.unique(res.topk_indices())
    assert (res.values.loc[~res.values.train_index.isin(picked), "value"] == 0).all()


def test_quality_swapped_after_fit_is_fitted(split) -> None:
    train, gen = split
    direct = gmval.value(train, gen, encoder="pixels", quality="realism", k=5, cache_dir=None, progress=False)
    v = gmval.Valuator("pixels", k=5, cache_dir=None, progress=False).fit(train)
    v.quality = create_quality_model("realism")
    swapped = v.value(gen)
    np.testing.assert_allclose(swapped.contributors["quality"], direct.contributors["quality"])
    assert swapped.contributors["quality"].nunique() > 1


def test_values_do_not_depend_on_training_order(split) -> None:
    train, gen = split
    perm = np.random.default_rng(0).permutation(len(train))
    a = gmval.value(train, gen, encoder="pixels", rerank="l2", k=10, cache_dir=None, progress=False)
    b = gmval.value(train.subset(perm), gen, encoder="pixels", rerank="l2", k=10, cache_dir=None, progress=False)
    va = a.values.set_index("train_id")["value"]
    vb = b.values.set_index("train_id")["value"].reindex(va.index)
    np.testing.assert_allclose(va.to_numpy(), vb.to_numpy(), rtol=1e-9, atol=1e-12)


def test_identical_class_ratio_is_high_on_digits(split) -> None:
    train, gen = split
    res = gmval.value(train, gen, encoder="pixels", rerank="l2", k=10, cache_dir=None, progress=False)
    rho = identical_class_ratio(res.attribution(), train.labels, gen.labels, ks=(1, 10))
    assert rho[1] > 0.9 and rho[10] > 0.8  # measured 0.96 / 0.92; chance is 0.1


class CountingPixels(PixelEncoder):
    calls = 0

    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        type(self).calls += len(images)
        return super().encode_batch(images)


def test_cache_hits_and_changed_parameters_recompute(split, tmp_path) -> None:
    train, gen = split
    CountingPixels.calls = 0
    v = Valuator(CountingPixels(device="cpu"), "l2", k=5, cache_dir=tmp_path, progress=False)
    first = v.fit(train).value(gen)
    n_first = CountingPixels.calls
    assert n_first >= len(train) + len(gen)
    again = Valuator(CountingPixels(device="cpu"), "l2", k=5, cache_dir=tmp_path, progress=False).fit(train).value(gen)
    assert CountingPixels.calls == n_first, "a second identical run must reuse every artefact"
    np.testing.assert_array_equal(first.values["value"], again.values["value"])
    # Another k reuses the stages too (only the cheap value step reruns).
    v.value(gen, k=7)
    assert CountingPixels.calls == n_first
    # A changed encoder parameter gives new embeddings.
    Valuator(CountingPixels(resolution=8, device="cpu"), "l2", k=5, cache_dir=tmp_path, progress=False).fit(train)
    assert CountingPixels.calls == n_first + len(train) + 1
    # Changed data (one pixel) is a different artefact as well.
    images = train.images.clone()
    images[0, 0, 0, 0] ^= 1
    changed = ImageSet(images, train.ids, train.labels, name="train")
    before = CountingPixels.calls
    Valuator(CountingPixels(device="cpu"), "l2", k=5, cache_dir=tmp_path, progress=False).fit(changed)
    assert CountingPixels.calls == before + len(train) + 1


class Interrupting(PixelEncoder):
    """Fails after a number of images, like a run killed half-way."""

    def __init__(self, fail_after: int | None) -> None:
        super().__init__(device="cpu")
        self.fail_after, self.seen = fail_after, 0

    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        self.seen += len(images)
        if self.fail_after is not None and self.seen > self.fail_after:
            raise KeyboardInterrupt
        return super().encode_batch(images)


def test_interrupted_embedding_resumes(split, tmp_path) -> None:
    train, gen = split
    with pytest.raises(KeyboardInterrupt):
        Valuator(Interrupting(700), "none", k=5, cache_dir=tmp_path, chunk_size=256, progress=False).fit(train)
    resumed = Interrupting(None)
    v = Valuator(resumed, "none", k=5, cache_dir=tmp_path, chunk_size=256, progress=False).fit(train)
    # 2 chunks of 256 were kept; the probe row + the remaining 988 rows are encoded again.
    assert resumed.seen == 1 + len(train) - 512
    ref = Valuator("pixels", "none", k=5, cache_dir=None, progress=False).fit(train)
    np.testing.assert_array_equal(v.value(gen).values["value"], ref.value(gen).values["value"])


def test_k_and_recall_k_larger_than_training_set(split) -> None:
    train, gen = split
    small = train.subset(range(20))
    with pytest.raises(ValueError, match="k=30 exceeds the training set"):
        gmval.value(small, gen, encoder="pixels", k=30, cache_dir=None, progress=False)
    with pytest.raises(ValueError, match="recall_k=50 exceeds"):
        gmval.value(small, gen, encoder="pixels", k=5, recall_k=50, cache_dir=None, progress=False)
    with pytest.raises(ValueError, match="recall_k=3 must be >= k=5"):
        Valuator("pixels", k=5, recall_k=3)
    # The default recall_k is capped at the training-set size.
    res = gmval.value(small, gen.subset(range(3)), encoder="pixels", k=20, cache_dir=None, progress=False)
    assert res.config["recall_k"] == 20


def test_generated_of_another_mode_and_size_are_read_on_the_training_grid(split) -> None:
    train, gen = split
    # RGB copies of the generated digits, padded to a wider canvas: each is converted to grey
    # and cropped back to its centred square, so it finds what the grey original finds.
    rgb = torch.zeros(len(gen), 3, 16, 24, dtype=torch.uint8)
    rgb[..., 4:20] = gen.images
    wide = ImageSet(rgb, gen.ids, name="rgb")
    kw = {"encoder": "pixels", "k": 5, "cache_dir": None, "progress": False}
    same = gmval.value(train, gen, **kw).topk_indices()
    assert (gmval.value(train, wide, **kw).topk_indices() == same).all()


class NaNQuality(QualityModel):
    name = "nan-test"

    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        out = np.ones(len(images))
        out[::2] = np.nan
        return out

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return raw


def test_nan_quality_raises_or_zeroes(split) -> None:
    train, gen = split
    gen = gen.subset(range(4))
    with pytest.raises(ValueError, match=r"NaN.*ids: 2500, 2502"):
        gmval.value(train, gen, encoder="pixels", quality=NaNQuality(device="cpu"), k=5, cache_dir=None,
                    progress=False)
    with pytest.warns(UserWarning, match="q = 0"):
        res = gmval.value(train, gen, encoder="pixels", quality=NaNQuality(device="cpu"), k=5, cache_dir=None,
                          progress=False, on_bad_quality="zero")
    q = res.contributors.groupby("generated_index")["quality"].first().to_numpy()
    np.testing.assert_array_equal(q, [0, 1, 0, 1])


def test_empty_and_malformed_inputs() -> None:
    with pytest.raises(ValueError, match="empty"):
        ImageSet(torch.zeros((0, 1, 8, 8), dtype=torch.uint8), np.arange(0))
    with pytest.raises(TypeError, match="uint8"):
        ImageSet(torch.zeros((2, 1, 8, 8)), np.arange(2))
    with pytest.raises(ValueError, match="not unique"):
        ImageSet(torch.zeros((2, 1, 8, 8), dtype=torch.uint8), np.array([1, 1]))
    with pytest.raises(KeyError, match="available"):
        create_encoder("inception")


def test_registries_list_every_component() -> None:
    assert {"clip", "efficientnet-lite0", "pixels", "pca"} <= set(gmval.list_encoders())
    assert {"none", "l2", "ssim", "effnet-features", "lpips", "dreamsim"} <= set(gmval.list_distances())
    assert {"none", "realism", "niqe", "brisque", "maniqa"} <= set(gmval.list_quality_models())


def test_paired_distance_call_is_symmetric_and_zero_on_identity(split) -> None:
    from gmval.distances import create_distance

    train, _ = split
    a, b = train.images[:6], train.images[6:12]
    for name in ["l2", "ssim"]:
        dist = create_distance(name, device="cpu")
        torch.testing.assert_close(dist(a, b), dist(b, a), rtol=1e-5, atol=1e-6)
        assert dist(a, a).abs().max() < 1e-5


def test_result_save_writes_tables(split, tmp_path) -> None:
    train, gen = split
    res = gmval.value(train, gen.subset(range(5)), encoder="pixels", k=4, cache_dir=None, progress=False)
    files = res.save(tmp_path / "out")
    assert len(res.contributors) == 20 and len(res.values) == len(train)
    assert files["values"].read_text().startswith("train_index,train_id,train_label,value")
    assert set(res.timings) >= {"embed_train", "index", "embed_generated", "recall", "rerank", "quality", "value"}


def test_bf16_encoder_agrees_with_fp32_and_is_keyed_apart(split) -> None:
    from gmval.encoders import create_encoder

    train, _ = split
    fp32 = create_encoder("efficientnet-lite0", resolution=32, precision="fp32", device="cpu")
    bf16 = create_encoder("efficientnet-lite0", resolution=32, precision="bf16", device="cpu")
    assert fp32.params() != bf16.params()
    a, b = fp32.encode(train.images[:64]), bf16.encode(train.images[:64])
    assert (a * b).sum(1).min() > 0.99   # cosine of unit embeddings; measured min 0.997
    with pytest.raises(ValueError, match="precision"):
        create_encoder("efficientnet-lite0", resolution=32, precision="half")


def test_rerank_features_are_reused_across_generated_sets(split, tmp_path) -> None:
    train, gen = split
    v = Valuator("pixels", ("effnet-features", {"resolution": 32}), k=5, cache_dir=tmp_path, progress=False).fit(train)
    v.value(gen.subset(range(40), "g1"))
    cache = next(tmp_path.glob("train-features-*.rows"))
    first = int(np.load(cache / "filled.npy").sum())
    v.value(gen.subset(range(20), "g2"))   # recalls a subset of what g1 recalled
    assert int(np.load(cache / "filled.npy").sum()) == first
    assert len(list(tmp_path.glob("train-features-*.rows"))) == 1


def test_ssim_matches_pyiqa(split) -> None:
    from pyiqa.archs.ssim_arch import ssim

    from gmval.distances import create_distance

    train, gen = split
    d = create_distance("ssim", device="cpu")
    a, b = d.features_of(gen.images[:6]), d.features_of(train.images[:24]).reshape(6, 4, -1)
    x = (gen.images[:6].float() / 255)[:, None].expand(-1, 4, -1, -1, -1).reshape(24, 1, 16, 16)
    y = (train.images[:24].float() / 255).reshape(24, 1, 16, 16)
    ref = 1 - ssim(x, y, data_range=1.0).reshape(6, 4)
    torch.testing.assert_close(d.pairwise(a, b), ref, atol=1e-5, rtol=0)


def test_no_rerank_reuses_exact_recall_distances_and_pq_recomputes_them(split) -> None:
    train, gen = split
    queries = gen.subset(range(30), "q")
    emb = create_encoder("pca", dim=32)
    emb.fit(train)
    x, q = emb.encode(train.images).numpy(), emb.encode(queries.images).numpy()
    for recall in ("flat", {"index": "pq", "m": 8, "nbits": 6}):
        res = Valuator(emb, "none", k=4, recall=recall, cache_dir=None, progress=False).fit(train).value(queries)
        top = res.contributors.sort_values(["generated_index", "rank"])
        direct = np.sqrt(((q[top["generated_index"]] - x[top["train_index"]]) ** 2).sum(1))
        # exact recall's distances, and after PQ the embeddings' own: never PQ's estimates
        np.testing.assert_allclose(top["distance"], direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block", [1, 10_000])   # one candidate per block; l2's 784 pixels: 3 per block
@pytest.mark.parametrize("distance", ["l2", ("effnet-features", {"resolution": 32})])
def test_rerank_blocks_do_not_change_distances(split, monkeypatch, distance, block) -> None:
    import gmval.valuator as valuator_module

    train, gen = split
    queries = gen.subset(range(25), "q")
    whole = Valuator("pixels", distance, k=5, cache_dir=None, progress=False).fit(train).value(queries)
    monkeypatch.setattr(valuator_module, "GATHER_BLOCK", block)
    blocked = Valuator("pixels", distance, k=5, cache_dir=None, progress=False).fit(train).value(queries)
    np.testing.assert_array_equal(blocked.contributors["distance"], whole.contributors["distance"])


def test_lazy_folders_match_in_memory_and_rerank_decodes_each_candidate_once(split, tmp_path, monkeypatch) -> None:
    from PIL import Image

    from gmval.data import folder, load_folder

    train, gen = split
    for sub, images in (("train", train.images[:600]), ("gen", torch.cat([gen.images[:6], gen.images[:6]]))):
        (tmp_path / sub).mkdir()
        for i, img in enumerate(images.numpy()):
            Image.fromarray(img[0]).save(tmp_path / sub / f"{i:04d}.png")
    lazy_train, lazy_gen = (load_folder(tmp_path / s, num_workers=0) for s in ("train", "gen"))
    v = Valuator("pixels", "l2", k=5, recall_k=20, cache_dir=None, progress=False).fit(lazy_train)
    decoded: list[str] = []
    real = folder._decode
    monkeypatch.setattr(folder, "_decode", lambda p, *a: decoded.append(p.parent.name + "/" + p.name) or real(p, *a))
    res = v.value(lazy_gen)
    train_reads = [d for d in decoded if d.startswith("train/")]
    # every generated image appears twice, so its candidates are needed twice: read once each
    assert len(train_reads) == len(set(train_reads)) <= 6 * 20
    eager = gmval.value(lazy_train.in_memory(), lazy_gen.in_memory(), encoder="pixels", rerank="l2", k=5,
                        recall_k=20, cache_dir=None, progress=False)
    assert (res.topk_indices() == eager.topk_indices()).all()
    assert np.allclose(res.values["value"], eager.values["value"])
