"""The benchmark scripts at toy size: their CSVs have the documented columns, and the naive
Algorithm 1 finds the same top-k contributors as the engine. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import bench_engine, bench_nearcopy, bench_scaling, bench_streaming

ENGINE_COLUMNS = {"variant", "path", "distance", "quality", "n_train", "n_generated", "one_time_s", "per_sample_ms",
                  "embed_generated_ms", "recall_ms", "rerank_ms", "quality_ms", "value_ms",
                  "non_encoder_ms_per_sample", "encoder_raw_img_per_s", "ratio_end_to_end_vs_raw", "naive_speedup",
                  "topk_match", "values_max_abs_diff", "peak_rss_mb", "peak_anon_mb", "peak_file_mb", "cpu_count",
                  "torch_threads", "device", "note"}
SCALING_COLUMNS = {"n", "dim", "index", "build_s", "index_bytes", "index_bytes_method", "search_ms_per_query",
                   "recall_at_k", "exact_method", "peak_rss_mb", "cpu_count", "note", "latent_dim", "intrinsic_dim"}
TOY = ["--n-train", "300", "--n-generated", "12", "--naive-subset", "4", "--raw-images", "32", "--batch-size", "32"]


@pytest.fixture(scope="module", autouse=True)
def mnist() -> None:
    from gmval.data import load_mnist

    try:
        load_mnist("test")
        load_mnist("train")
    except FileNotFoundError as e:
        pytest.skip(f"MNIST unavailable (no network, no package index): {e}")


def _check_engine(out: Path, ran: set[str]) -> pd.DataFrame:
    df = pd.read_csv(out)
    assert ENGINE_COLUMNS <= set(df.columns)
    assert out.with_suffix(".png").is_file()
    naive = df[df["path"] == "naive"].set_index("variant")
    assert set(naive.index) == ran
    # The naive loop and the engine compute the same d_ij from the same features: same contributors.
    assert (naive["topk_match"] == 1.0).all(), naive[["topk_match", "topk_order_match"]]
    assert (naive["values_max_abs_diff"] < 1e-4).all(), naive["values_max_abs_diff"]
    fast = df[df["path"] == "fast"].dropna(subset=["per_sample_ms"])
    assert set(fast["n_generated"]) == {4, 12}
    assert (fast[["per_sample_ms", "one_time_s", "encoder_raw_img_per_s", "peak_rss_mb"]] > 0).all().all()
    if sys.platform == "linux":  # /proc/self/status: each part of resident memory is within the getrusage peak
        for part in ("peak_anon_mb", "peak_file_mb"):
            assert (fast[part] > 0).all() and (fast[part] <= fast["peak_rss_mb"] + 1).all(), part
    return df


def test_engine_in_process_naive_matches_engine(tmp_path: Path) -> None:
    ran = {"No-Rerank", "l2", "SSIM", "effnet-features", "LPIPS-random", "No-Rerank+realism"}
    out = tmp_path / "engine.csv"
    bench_engine.main([*TOY, "--in-process", "--device", "cpu", "--variants", ",".join([*ran, "DreamSim"]),
                       "--out", str(out)])
    df = _check_engine(out, ran)
    dreamsim = df[df["variant"] == "DreamSim"]
    assert len(dreamsim) == 1 and dreamsim["note"].str.startswith("not run").all()


def test_engine_variant_in_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "engine.csv"
    bench_engine.main([*TOY, "--device", "cpu", "--variants", "No-Rerank", "--out", str(out)])
    _check_engine(out, {"No-Rerank"})


def test_scaling_exact_paths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flat-index and chunked brute-force ground truth give IVF-PQ the same recall."""
    args = ["--quick", "--min-n", "1e4", "--max-n", "1e4", "--chunk", "3000"]
    in_memory = bench_scaling.main([*args, "--out", str(tmp_path / "a.csv")])
    assert SCALING_COLUMNS <= set(pd.read_csv(tmp_path / "a.csv").columns)
    assert (tmp_path / "a.png").is_file()
    # A budget that holds IVF-PQ and the working chunks but not the 5 MB flat index.
    monkeypatch.setattr(bench_scaling, "available_bytes", lambda: 8 * 2**20)
    streamed = bench_scaling.main([*args, "--memory-fraction", "1", "--out", str(tmp_path / "b.csv")])
    a, b = (df.set_index("index") for df in (in_memory, streamed))
    assert a.loc["flat", "exact_method"] == "flat index"
    assert b.loc["flat", "exact_method"].startswith("chunked brute force")
    assert 0.0 < a.loc["ivfpq", "recall_at_k"] <= 1.0
    assert a.loc["ivfpq", "recall_at_k"] == b.loc["ivfpq", "recall_at_k"]
    assert a.loc["flat", "index_bytes"] == b.loc["flat", "index_bytes"] == 10_000 * 128 * 4


def test_scaling_searches_one_build_at_each_nprobe(tmp_path: Path) -> None:
    # 400 cells of ~25 vectors: one cell cannot hold a query's 100 neighbours
    df = bench_scaling.main(["--quick", "--min-n", "1e4", "--max-n", "1e4", "--nprobe", "1,16,400",
                             "--out", str(tmp_path / "s.csv")])
    pq = df[df["index"] == "ivfpq"].set_index("nprobe")
    assert list(pq.index) == [1, 16, 400] and pq["build_s"].nunique() == 1
    assert pq.loc[1, "note"].startswith("not measured") and np.isnan(pq.loc[1, "recall_at_k"])
    assert pq.loc[16, "recall_at_k"] < pq.loc[400, "recall_at_k"] <= 1.0
    with pytest.raises(SystemExit):
        bench_scaling.parse_args(["--nprobe", "8,0"])


def test_scaling_hnsw_rows_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "h.csv"
    args = ["--quick", "--approx", "hnsw", "--ef-search", "100,400", "--hnsw-m", "8", "--out", str(out)]
    first = bench_scaling.main([*args, "--min-n", "1e4", "--max-n", "1e4"])
    assert list(first["variant"]) == ["flat", "hnsw ef 100", "hnsw ef 400"]
    graph = first[first["index"] == "hnsw"].set_index("ef_search")
    assert graph["build_s"].nunique() == 1 and (graph["index_bytes_method"] == "serialized").all()
    assert graph.loc[100, "recall_at_k"] < graph.loc[400, "recall_at_k"] <= 1.0
    written = pd.read_csv(out)
    # a second run keeps 10^4 as measured and adds 10^3
    second = bench_scaling.main([*args, "--min-n", "1e3", "--max-n", "1e4", "--resume"])
    assert list(second["n"]) == [1000] * 3 + [10_000] * 3
    kept = second[second["n"] == 10_000].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[written.columns], written, check_dtype=False)
    with pytest.raises(SystemExit, match=r"other settings \(ef_search\); refusing to mix"):
        bench_scaling.main([*args[:4], "64", *args[5:], "--max-n", "1e3", "--resume"])


def test_intrinsic_dimension_recovers_known_dimensions() -> None:
    rng = np.random.default_rng(0)
    for d in (3, 8):
        x = rng.standard_normal((5000, d)) @ rng.standard_normal((d, 128))  # a d-dim subspace of R^128
        assert bench_scaling.intrinsic_dimension(x, queries=300) == pytest.approx(d, rel=0.25)
    # The mixture's within-component rank is what sets it.
    low, high = (bench_scaling.intrinsic_dimension(
        bench_scaling.Mixture(128, latent_dim=r).sample(5000, np.random.default_rng(0)), queries=300) for r in (4, 32))
    assert low < high
    with pytest.raises(ValueError, match="more than k"):
        bench_scaling.intrinsic_dimension(x[:20])


def test_scaling_skips_what_does_not_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_scaling, "available_bytes", lambda: 2**20)
    df = bench_scaling.main(["--quick", "--max-n", "1e3", "--out", str(tmp_path / "s.csv")])
    assert df["note"].str.startswith("skipped").all()


def test_index_size_is_counted_without_a_copy() -> None:
    """The streamed count equals faiss's in-memory serialisation, beyond the writer's 1 MB buffer."""
    import faiss

    index = faiss.IndexFlatL2(64)
    index.add(np.random.default_rng(0).random((20_000, 64), dtype=np.float32))
    assert bench_scaling.serialized_bytes(index) == faiss.serialize_index(index).nbytes > 4 * 2**20


def test_streaming_rows_at_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "streaming.csv"
    assert bench_streaming.main(["--quick", "--out", str(out), "--workdir", str(tmp_path),
                                 "--value-arg=--encoder", "--value-arg=pixels"]) == 0
    df = pd.read_csv(out)
    assert df["n_train"].tolist() == [60, 120] and (df["peak_rss_tree_mb"] > 0).all()
    assert (df["images_per_s"] > 0).all() and "t_embed_train" in df


def test_nearcopy_perturbations_and_rows(tmp_path: Path) -> None:
    import torch

    x = torch.randint(0, 256, (4, 3, 20, 20), dtype=torch.uint8)
    for kind in [*bench_nearcopy.PERTURBATIONS, "all"]:
        y = bench_nearcopy.perturb(x, kind, seed=0)
        assert y.shape == x.shape and y.dtype == torch.uint8 and not torch.equal(y, x)
    out = tmp_path / "nearcopy.csv"
    assert bench_nearcopy.main(["--quick", "--settings", "thumbnail+l2", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df["perturbation"]) == {*bench_nearcopy.PERTURBATIONS, "all"}
    assert set(df["dataset"]) == {"mnist-train", "photo-tiles"} and df["top1"].between(0, 1).all()
    assert (tmp_path / "nearcopy_c1.csv").is_file()
