"""Recall-index scaling: exact search (gmval's flat `ExactIndex`) against IVF-PQ and HNSW from 10^4 to 10^7 vectors.

Vectors are synthetic, float32, L2-normalised like the encoder's embeddings, of the
encoder's dimension (1280 for EfficientNet-Lite0's pooled features), drawn from a
Gaussian mixture whose components vary along a shared low-dimensional subspace, so that
nearest neighbours are structured (as real embeddings are) and recall@K means something.

Vectors are generated in chunks and never held all at once, unless the exact index
fits in memory. For each size it reports the build time, the index's memory, the search
time per query and the recall@K of each approximate index (``--approx``: IVF-PQ, HNSW over
8-bit codes) against exact search on a few hundred queries, one row per search setting
(``--nprobe``, ``--ef-search``) of one build. Each index is built in its own pass over the
stream and freed before the next, so only one is in memory at a time. When the exact index
does not fit (10^7 x 1280 float32 is 51 GB), the exact neighbours come from a chunked
brute-force pass over the same stream, and the flat index's memory is reported as
computed (n x d x 4 bytes), not allocated. An approximate index that would not fit is
skipped with a message. ``--resume`` keeps the sizes an earlier run with the same settings
already wrote to the CSV (a 10^7 run takes hours) and measures the others.

Run ``python -m benchmarks.bench_scaling --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, HelpFormatter, available_bytes, machine_info, peak_rss_mb, print_table, write_csv

#: Full-size defaults, and the seconds-long ``--quick`` ones (``dim=None``: the encoder's).
FULL = {"min_n": 1e4, "max_n": 1e7, "dim": None, "n_queries": 300, "m": 64, "train_samples": 100_000}
QUICK = {"min_n": 1e3, "max_n": 1e4, "dim": 128, "n_queries": 100, "m": 16, "train_samples": 5000}

TABLE_COLUMNS = ["n", "variant", "build_s", "index_mb", "index_bytes_method", "search_ms_per_query",
                 "recall_at_k", "exact_method", "note"]


def encoder_dim() -> int:
    """The recall embedding dimension of the default offline encoder."""
    from gmval.encoders.efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder.dim


@dataclass
class Mixture:
    """Unit-norm vectors: a random centre, plus a shared low-rank Gaussian, plus isotropic noise.

    Attributes:
        dim: vector dimension.
        clusters: mixture components.
        latent_dim: rank of the within-component variation.
        spread: scale of that variation relative to the centres' (unit) norm.
        noise: scale of the full-rank isotropic noise, relative likewise.
        seed: seed of centres and subspace.
    """

    dim: int
    clusters: int = 1000
    latent_dim: int = 64
    spread: float = 0.5
    noise: float = 0.1
    seed: int = 0
    centres: np.ndarray = field(init=False, repr=False)
    basis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        scale = np.float32(1 / math.sqrt(self.dim))
        self.centres = rng.standard_normal((self.clusters, self.dim), dtype=np.float32) * scale
        self.basis = rng.standard_normal((self.latent_dim, self.dim), dtype=np.float32) * scale

    def sample(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """``rows`` vectors (rows, dim) float32."""
        x = self.centres[rng.integers(self.clusters, size=rows)]
        x += (rng.standard_normal((rows, self.latent_dim), dtype=np.float32) * np.float32(self.spread)) @ self.basis
        x += rng.standard_normal((rows, self.dim), dtype=np.float32) * np.float32(self.noise / math.sqrt(self.dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def stream(self, n: int, chunk: int) -> Iterator[np.ndarray]:
        """The n database vectors in chunks; chunk c is seeded by (seed, c), so reruns are identical."""
        for c, start in enumerate(range(0, n, chunk)):
            yield self.sample(min(chunk, n - start), np.random.default_rng([self.seed, 0, c]))

    def queries(self, n: int) -> np.ndarray:
        """Query vectors from the same mixture, disjoint from the database stream's seeds."""
        return self.sample(n, np.random.default_rng([self.seed, 1]))


def intrinsic_dimension(x: np.ndarray, k: int = 20, queries: int = 1000, seed: int = 0) -> float:
    """Median local intrinsic dimension of the rows of ``x``: Levina and Bickel's maximum-likelihood
    estimate from the distances to each query's ``k`` nearest other rows.

    How hard approximate search is depends on it: where it is high, a query's neighbours are
    nearly equidistant and spread over many IVF cells. Real EfficientNet-Lite0 embeddings of
    30,000 training images measured 13.2 (MNIST) and 17.1 (Fashion-MNIST); this mixture with its
    default 64-d within-component variation 42-44.
    """
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) <= k:
        raise ValueError(f"need more than k={k} rows, got {len(x)}")
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    rows = np.random.default_rng(seed).choice(len(x), min(queries, len(x)), replace=False)
    dist, ids = index.search(x[rows], k + 1)
    # Drop each query's own row wherever ties put it in the list.
    keep = ids != rows[:, None]
    radii = np.sqrt(np.maximum(np.stack([d[m][:k] for d, m in zip(dist, keep, strict=True)]), 1e-24))
    estimates = (k - 1) / np.log(radii[:, -1:] / radii[:, :-1]).sum(axis=1)
    return float(np.median(estimates))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--min-n", type=float, help="smallest database; sizes go up by x10 (default 1e4; quick 1e3)")
    p.add_argument("--max-n", type=float, help="largest database (default 1e7; quick 1e4)")
    p.add_argument("--dim", type=int, help="vector dimension (default: the encoder's, 1280; quick 128)")
    p.add_argument("--n-queries", type=int, help="queries for search time and recall (default 300; quick 100)")
    p.add_argument("--k", type=int, default=100, help="neighbours per query (recall@k)")
    p.add_argument("--m", type=int, help="PQ sub-quantisers (default 64; quick 16)")
    p.add_argument("--nbits", type=int, default=8, help="bits per PQ code")
    p.add_argument("--nlist", type=int, default=None, help="IVF cells (default: gmval's 4*sqrt(n))")
    p.add_argument("--approx", type=_kind_list, default=["ivfpq"],
                   help="approximate indexes measured against exact search, comma-separated: ivfpq, hnsw")
    p.add_argument("--nprobe", type=_int_list, default=[32],
                   help="IVF cells visited per query; a comma-separated list searches one build at each (one row each)")
    p.add_argument("--coarse", default="flat", choices=["flat", "hnsw"], help="IVF coarse quantiser")
    p.add_argument("--refine", type=int, default=0,
                   help="re-rank refine*k IVF-PQ candidates by exact distances on float16 copies (0: off)")
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW graph neighbours per vector")
    p.add_argument("--ef-construction", type=int, default=40, help="HNSW candidate list while building")
    p.add_argument("--ef-search", type=_int_list, default=[512],
                   help="HNSW candidate list per query; a comma-separated list searches one build at each")
    p.add_argument("--hnsw-refine", type=int, default=0,
                   help="re-rank refine*k HNSW candidates by exact distances on float16 copies (0: off)")
    p.add_argument("--train-samples", type=int, help="vectors that train IVF-PQ (default 100000; quick 5000)")
    p.add_argument("--chunk", type=int, default=100_000, help="vectors generated (and added) at a time")
    p.add_argument("--clusters", type=int, default=1000, help="mixture components")
    p.add_argument("--latent-dim", type=int, default=64,
                   help="rank of the within-component variation (sets the intrinsic dimension, a CSV column)")
    p.add_argument("--memory-fraction", type=float, default=0.7,
                   help="share of the memory available at each size that the run may plan to use")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "scaling.csv", help="CSV to write (a PNG goes beside it)")
    p.add_argument("--quick", action="store_true", help="10^3..10^4 vectors of dimension 128: seconds")
    p.add_argument("--resume", action="store_true",
                   help="keep the sizes already in --out that were measured with these settings")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.dim = args.dim or encoder_dim()
    if args.dim % args.m:
        p.error(f"--m {args.m} must divide --dim {args.dim}")
    return args


def _kind_list(text: str) -> list[str]:
    kinds = [v.strip() for v in text.split(",") if v.strip()]
    if not kinds or set(kinds) - {"ivfpq", "hnsw"}:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of ivfpq, hnsw; got {text!r}")
    return kinds


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def sizes(min_n: float, max_n: float) -> list[int]:
    """Powers of ten from ``min_n`` to ``max_n`` (both rounded to a power of ten)."""
    return [10 ** e for e in range(round(math.log10(min_n)), round(math.log10(max_n)) + 1)]


def ivfpq_bytes(n: int, dim: int, m: int, nbits: int, nlist: int, refine: int = 0) -> int:
    """Planned IVF-PQ size: codes and 8-byte ids per vector, coarse centroids, PQ codebooks,
    and the float16 copies that ``refine`` re-ranks with."""
    return int(n * (m * nbits / 8 + 8) + nlist * dim * 4 + dim * 2 ** nbits * 4 + (n * dim * 2 if refine else 0))


def hnsw_bytes(n: int, dim: int, hnsw_m: int, refine: int = 0) -> int:
    """Planned HNSW size: 8-bit codes, 4-byte links (2M on the base layer, ~M/(M-1) layers'
    worth in all, rounded up to 3M), and the float16 copies that ``refine`` re-ranks with."""
    return int(n * (dim + 3 * hnsw_m * 4 + 16) + (n * dim * 2 if refine else 0))


def approximate_configs(n: int, args: argparse.Namespace) -> list[tuple[Any, int, list[tuple[str, int]]]]:
    """Per ``--approx`` kind: its :class:`~gmval.recall.RecallConfig`, planned bytes, and the
    search settings each build is searched at, as (setter name, value)."""
    from gmval.recall import RecallConfig

    out: list[tuple[Any, int, list[tuple[str, int]]]] = []
    for kind in args.approx:
        if kind == "ivfpq":
            nlist = args.nlist or max(1, int(4 * math.sqrt(n)))
            cfg = RecallConfig("ivfpq", m=args.m, nbits=args.nbits, nlist=nlist, nprobe=args.nprobe[0],
                               coarse=args.coarse, refine=args.refine, train_samples=args.train_samples, seed=args.seed)
            plan = ivfpq_bytes(n, args.dim, args.m, args.nbits, nlist, args.refine)
            out.append((cfg, plan, [("set_nprobe", p) for p in args.nprobe]))
        else:
            cfg = RecallConfig("hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                               ef_search=args.ef_search[0], refine=args.hnsw_refine,
                               train_samples=args.train_samples, seed=args.seed)
            plan = hnsw_bytes(n, args.dim, args.hnsw_m, args.hnsw_refine)
            out.append((cfg, plan, [("set_ef_search", e) for e in args.ef_search]))
    return out


def variant_name(params: dict[str, Any]) -> str:
    """A row's label: the index and the search setting that row measured."""
    if params["index"] == "ivfpq":
        return f"ivfpq nprobe {params['nprobe']}"
    if params["index"] == "hnsw":
        return f"hnsw ef {params['ef_search']}"
    return str(params["index"])


def run_size(n: int, args: argparse.Namespace, mix: Mixture, queries: np.ndarray) -> list[dict[str, Any]]:
    """Exact neighbours of the queries over n vectors, then each approximate index in its own
    pass over the same stream (or planned and skipped), searched at each setting."""
    import faiss

    from gmval.recall import RecallConfig, RecallIndex, recall_at_k

    d, k, nq = args.dim, min(args.k, n), len(queries)
    budget = int(args.memory_fraction * available_bytes())
    working = 3 * min(args.chunk, n) * d * 4  # the chunk, its copy inside faiss, k-means scratch
    flat_bytes = n * d * 4
    base = {"n": n, "dim": d, "k": k, "n_queries": nq, "budget_mb": budget / 2**20}

    plans = []
    for cfg, plan, settings in approximate_configs(n, args):
        # IVF trains on the first chunk; fewer vectors than IVF cells cannot place the centroids.
        train_rows = min(n, args.chunk, args.train_samples)
        if cfg.index == "ivfpq" and train_rows < cfg.nlist:
            note = f"skipped: {train_rows} training vectors for {cfg.nlist} IVF cells"
        elif plan + working > budget:
            note = f"skipped: {cfg.index} needs ~{(plan + working) / 2**30:.1f} GiB, budget {budget / 2**30:.1f} GiB"
        else:
            note = ""
        if note:
            print(f"[bench_scaling] n={n}: {note}", file=sys.stderr)
        plans.append((cfg, plan, settings, note))
    skipped_rows = [{**base, **cfg.params(), **params, "index_bytes_planned": plan, "variant": variant_name(params),
                     "note": note}
                    for cfg, plan, settings, note in plans if note
                    for params in (getattr(RecallIndex(cfg), setter)(value).params() for setter, value in settings)]
    if all(note for *_, note in plans):  # nothing to compare exact search with
        return [{**base, "index": "flat", "variant": "flat", "index_bytes": flat_bytes, "note": "skipped: no "
                 "approximate index measured"}, *skipped_rows]

    keep_flat = flat_bytes + working <= budget
    if not keep_flat:
        print(f"[bench_scaling] n={n}: a flat index ({flat_bytes / 2**30:.1f} GiB) does not fit the budget "
              f"({budget / 2**30:.1f} GiB); exact neighbours by chunked brute force", file=sys.stderr)
    flat = heap = None
    timer = StreamTimer()
    for offset, x in _offsets(timer.over(mix.stream(n, args.chunk))):
        if keep_flat:
            if flat is None:
                flat = RecallIndex(RecallConfig("flat", precision="fp32")).build(x)  # the recall reference
            else:
                flat.index.add(x)
        else:
            dist, idx = faiss.knn(queries, x, min(k, len(x)))
            if heap is None:
                heap = faiss.ResultHeap(nq, k)
            heap.add_result(dist, idx + offset)
    if flat is not None:
        t0 = time.perf_counter()
        exact = flat.search(queries, k)[1]
        exact_search, method = time.perf_counter() - t0, "flat index"
        del flat
    else:
        assert heap is not None
        heap.finalize()
        exact, exact_search, method = heap.I, timer.work, "chunked brute force (faiss.knn per chunk)"
    rows = [{**base, "index": "flat", "variant": "flat", "index_bytes": flat_bytes, "recall_at_k": 1.0,
             "generate_s": timer.generate, "exact_method": method, "peak_rss_mb": peak_rss_mb(),
             "build_s": timer.work if keep_flat else np.nan, "index_bytes_method": "computed",
             "search_ms_per_query": 1e3 * exact_search / nq,
             "note": "" if keep_flat else "not built: memory computed, search time of the brute-force pass"}]

    rows += [{**row, "exact_method": method} for row in skipped_rows]
    for cfg, plan, settings, note in plans:
        if note:
            continue
        row = {**base, **cfg.params(), "index_bytes_planned": plan, "exact_method": method}
        index = None
        timer = StreamTimer()
        for x in timer.over(mix.stream(n, args.chunk)):
            if index is None:
                index = RecallIndex(cfg).build(x)  # trains on (a sample of) the first chunk, as gmval would
            else:
                index.index.add(x)
        assert index is not None
        row |= {"generate_s": timer.generate, "build_s": timer.work, "index_bytes": serialized_bytes(index.index),
                "index_bytes_method": "serialized", "peak_rss_mb": peak_rss_mb(), "note": ""}
        for setter, value in settings:
            getattr(index, setter)(value)
            measured = {**row, **index.params(), "variant": variant_name(index.params())}
            t0 = time.perf_counter()
            try:
                approx = index.search(queries, k)[1]
            except ValueError as err:  # too few cells visited to find k neighbours: a row that says so
                rows.append({**measured, "note": f"not measured: {err}"})
                continue
            rows.append({**measured, "search_ms_per_query": 1e3 * (time.perf_counter() - t0) / nq,
                         "recall_at_k": recall_at_k(approx, exact)})
        del index
    return rows


def serialized_bytes(index: Any) -> int:
    """Size of ``index`` as faiss writes it, counted while streaming: ``faiss.serialize_index``
    would hold a second copy in memory, which at 10^7 vectors is what ran out of it."""
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    writer = faiss.PyCallbackIOWriter(count)
    faiss.write_index(index, writer)
    del writer  # flushes its buffer through count()
    return total


class StreamTimer:
    """Splits the time of a pass over a chunk stream into making the chunks and using them."""

    def __init__(self) -> None:
        self.generate = self.work = 0.0

    def over(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield ``chunks``, adding the time spent producing each to :attr:`generate` and the
        time the consumer spends on it, until it asks for the next, to :attr:`work`."""
        start = time.perf_counter()
        for x in chunks:
            ready = time.perf_counter()
            self.generate += ready - start
            yield x
            start = time.perf_counter()
            self.work += start - ready


def _offsets(chunks: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    offset = 0
    for x in chunks:
        yield offset, x
        offset += len(x)


def plot(df: pd.DataFrame, png: Path) -> None:
    """Build time, memory, search time and recall against n, one line per variant (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "search_ms_per_query" not in df or df["search_ms_per_query"].isna().all():
        return  # every size was skipped: nothing to draw
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    panels = [("build_s", "build (s)"), ("index_mb", "index memory (MiB)"),
              ("search_ms_per_query", "search (ms / query)"), ("recall_at_k", "recall@k vs exact")]
    for ax, (col, label) in zip(axes, panels, strict=True):
        for name, grp in df.groupby("variant", sort=False):
            grp = grp.dropna(subset=[col])
            ax.plot(grp["n"], grp[col], "o-", label=name)
        ax.set_xscale("log")
        if col != "recall_at_k":
            ax.set_yscale("log")
        ax.set_xlabel("database vectors n")
        ax.set_title(label)
    axes[0].legend()
    fig.suptitle(f"dim={int(df['dim'].iloc[0])}; flat memory beyond the budget is computed, not allocated",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


#: Arguments that change what a row measures: rows of two runs are comparable only if these agree.
RUN_SETTINGS = ("dim", "k", "n_queries", "chunk", "clusters", "latent_dim", "seed", "approx", "m", "nbits", "nlist",
                "nprobe", "coarse", "refine", "train_samples", "hnsw_m", "ef_construction", "ef_search",
                "hnsw_refine", "memory_fraction")


def run_settings(args: argparse.Namespace) -> str:
    """The :data:`RUN_SETTINGS` of a run as one JSON string (a CSV column)."""
    return json.dumps({name: getattr(args, name) for name in RUN_SETTINGS}, sort_keys=True)


def resumed_rows(path: Path, settings: str, wanted: list[int]) -> pd.DataFrame:
    """The rows of ``path`` whose size is in ``wanted``, if the run that wrote them had ``settings``.

    Raises:
        SystemExit: if ``path`` holds rows of other settings (mixing them would compare
            different benchmarks in one plot).
    """
    if not path.exists():
        return pd.DataFrame()
    old = pd.read_csv(path)
    if "run_settings" not in old or (old["run_settings"] != settings).any():
        theirs = json.loads(old["run_settings"].iloc[0]) if "run_settings" in old else {}
        ours = json.loads(settings)
        differ = sorted(k for k in ours if theirs.get(k) != ours[k]) or ["(no run_settings column)"]
        raise SystemExit(f"bench_scaling: {path} was written with other settings ({', '.join(differ)}); "
                         "refusing to mix them: pass another --out, or drop --resume")
    return old[old["n"].isin(wanted)]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run every size (with ``--resume``, every size the CSV lacks), write the CSV (rewritten
    after each size) and its PNG; returns the table."""
    import faiss

    args = parse_args(argv)
    settings = run_settings(args)
    wanted = sizes(args.min_n, args.max_n)
    df = resumed_rows(args.out, settings, wanted) if args.resume else pd.DataFrame()
    todo = [n for n in wanted if df.empty or n not in set(df["n"])]
    if len(todo) < len(wanted):
        print(f"[bench_scaling] resuming: n={sorted(set(wanted) - set(todo))} kept from {args.out}", file=sys.stderr)
    mix = Mixture(args.dim, clusters=args.clusters, latent_dim=args.latent_dim, seed=args.seed)
    queries = mix.queries(args.n_queries)
    # Measured once, on a fixed sample size: the estimate drifts with n, the mixture does not.
    shape = {"latent_dim": args.latent_dim, "clusters": args.clusters,
             "intrinsic_dim": intrinsic_dimension(mix.sample(30_000, np.random.default_rng([args.seed, 2])))}
    machine = {**machine_info("cpu"), "faiss_threads": faiss.omp_get_max_threads(), "faiss_version": faiss.__version__}
    for n in todo:
        start = time.perf_counter()
        new = pd.DataFrame(run_size(n, args, mix, queries)).assign(**shape, **machine, run_settings=settings)
        new["index_mb"] = new["index_bytes"] / 2**20
        df = new if df.empty else pd.concat([df, new], ignore_index=True).sort_values("n", kind="stable",
                                                                                    ignore_index=True)
        write_csv(df, args.out)
        print(f"[bench_scaling] n={n}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    plot(df, args.out.with_suffix(".png"))
    print_table(df, TABLE_COLUMNS)
    print(f"wrote {args.out}")
    return df


if __name__ == "__main__":
    main()
