"""Engine benchmark: where GMValuator's time and memory go, per variant, with caching off.

For each variant (re-ranking distance x quality model) on MNIST (training digits as the
training set, test digits standing in for generated images) with the offline recall
encoder EfficientNet-Lite0, it measures:

* the one-time cost: encoding and indexing the training set (and fitting a reference
  quality model);
* the cost per generated sample, split by stage (embed, recall, rerank, quality, value);
* the encoder's raw throughput: a bare forward pass of the same network at the same batch
  size and resolution on ready-made input tensors, the floor that end-to-end time is
  compared with;
* the naive Algorithm 1 (:mod:`benchmarks.naive`) on a few generated samples, its
  speed-up, and whether it finds the same top-k contributors;
* peak memory, each variant in its own process so that peaks are not shared.

Run ``python -m benchmarks.bench_engine --help`` from the repository root; the README in
this folder lists the columns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (
    RESULTS,
    HelpFormatter,
    ResidentPeaks,
    machine_info,
    peak_rss_mb,
    pick_device,
    print_table,
    rss_mb,
    write_csv,
)

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("embed_generated", "recall", "rerank", "quality", "value")
#: Forward passes of networks: the encoder's, and the distance's inside ``rerank``.
FORWARDS = ("embed_generated", "distance_features")
MNIST_SIZES = {"train": 60_000, "test": 10_000}


@dataclass(frozen=True)
class Variant:
    """One row family of the benchmark.

    Attributes:
        distance: registered re-ranking distance (``"none"`` = No-Rerank).
        quality: registered quality model.
        distance_kwargs: constructor arguments of the distance.
        skip: why the variant is not run (it still gets a row saying so), or ``""``.
    """

    distance: str
    quality: str = "none"
    distance_kwargs: dict[str, Any] = field(default_factory=dict)
    skip: str = ""


VARIANTS: dict[str, Variant] = {
    "No-Rerank": Variant("none"),
    "l2": Variant("l2"),
    "SSIM": Variant("ssim"),
    "effnet-features": Variant("effnet-features"),
    # Random backbone: timing needs the architecture, not ImageNet weights, and stays offline.
    "LPIPS-random": Variant("lpips", distance_kwargs={"pnet_rand": True}),
    "DreamSim": Variant("dreamsim", skip="not run: its models need the release weights (no random-weight "
                                         "constructor in the dreamsim package)"),
    "No-Rerank+realism": Variant("none", "realism"),
    "No-Rerank+niqe": Variant("none", "niqe"),
    "No-Rerank+brisque": Variant("none", "brisque"),
}

#: Full-size defaults, and the seconds-long ``--quick`` ones.
FULL = {"n_train": 60_000, "n_generated": "1000,10000", "naive_subset": 20, "raw_images": 2048}
QUICK = {"n_train": 1000, "n_generated": "50", "naive_subset": 2, "raw_images": 256}

TABLE_COLUMNS = ["variant", "path", "n_train", "n_generated", "one_time_s", "per_sample_ms", "embed_generated_ms",
                 "recall_ms", "rerank_ms", "quality_ms", "non_encoder_ms_per_sample", "ratio_end_to_end_vs_raw",
                 "naive_speedup", "topk_match", "peak_rss_mb", "peak_anon_mb", "note"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--n-train", type=int, help=f"training digits (default {FULL['n_train']}; quick {QUICK['n_train']})")
    p.add_argument("--n-generated", help="comma-separated generated-set sizes, test digits "
                                         f"(default {FULL['n_generated']}; quick {QUICK['n_generated']})")
    p.add_argument("--naive-subset", type=int, help="generated samples valued by the naive Algorithm 1 and by the "
                                                    f"engine for comparison; 0 skips it (default "
                                                    f"{FULL['naive_subset']}; quick {QUICK['naive_subset']})")
    p.add_argument("--raw-images", type=int, help="images through the bare encoder forward (default "
                                                  f"{FULL['raw_images']}; quick {QUICK['raw_images']})")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    p.add_argument("--resolution", type=int, default=64, help="EfficientNet-Lite0 input side")
    p.add_argument("--batch-size", type=int, default=256, help="encoder and distance batch size")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="forward precision of the encoder and effnet-features, and the exact search's "
                        "candidate selection (gmval.precision, gmval.recall.ExactIndex)")
    p.add_argument("--k", type=int, default=30, help="contributors per generated image")
    p.add_argument("--recall-k", type=int, default=None, help="recalled candidates (default: max(2k, 100))")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--out", type=Path, default=RESULTS / "engine.csv", help="CSV to write (a PNG goes beside it)")
    p.add_argument("--quick", action="store_true", help="toy sizes: a minute or two, mostly process start-up")
    p.add_argument("--in-process", action="store_true",
                   help="run the variants in this process (faster start; peak memory is then cumulative)")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.n_generated = sorted(int(n) for n in str(args.n_generated).split(","))
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if not 1 <= args.n_train <= MNIST_SIZES["train"]:
        p.error(f"--n-train must be in 1..{MNIST_SIZES['train']}")
    if max(args.n_generated + [args.naive_subset]) > MNIST_SIZES["test"] or min(args.n_generated) < 1:
        p.error(f"generated sizes must be in 1..{MNIST_SIZES['test']} (MNIST test digits)")
    return args


# ----------------------------------------------------------------------------- measurements
def raw_encoder_throughput(cfg: dict[str, Any], memory: ResidentPeaks) -> dict[str, Any]:
    """Images/s of a bare forward of the recall network on pre-processed tensors.

    The same computation as the encoder (features, global average pool) without
    pre-processing, normalisation, chunking or copies: the floor of the embed stage.
    """
    import torch

    from gmval.data import load_mnist
    from gmval.encoders.efficientnet import EfficientNetLite0Encoder, preprocess
    from gmval.precision import forward_precision

    device, bs = cfg["device"], cfg["batch_size"]
    enc = EfficientNetLite0Encoder(cfg["resolution"], precision=cfg["precision"], device=device)
    x = preprocess(load_mnist("test").images[:bs], cfg["resolution"]).to(device)
    n_batches = max(1, cfg["raw_images"] // bs)
    with torch.inference_mode(), forward_precision(enc.precision, enc.device):
        enc.net.extract_features(x).mean(dim=(2, 3))  # warm-up: allocator, oneDNN/cuDNN kernel choice
        _sync(device)
        start = time.perf_counter()
        for _ in range(n_batches):
            enc.net.extract_features(x).mean(dim=(2, 3))
        _sync(device)
        elapsed = time.perf_counter() - start
    return {"encoder_raw_img_per_s": n_batches * bs / elapsed, "precision": enc.precision, "peak_rss_mb": peak_rss_mb(),
            **memory.peaks()}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_variant(name: str, cfg: dict[str, Any], memory: ResidentPeaks) -> list[dict[str, Any]]:
    """All rows of one variant: fast path at each generated-set size, then naive vs fast (peaks from ``memory``)."""
    variant = VARIANTS[name]
    base = {"variant": name, "distance": variant.distance, "distance_params": json.dumps(variant.distance_kwargs),
            "quality": variant.quality, "n_train": cfg["n_train"], "encoder": "efficientnet-lite0",
            "resolution": cfg["resolution"], "batch_size": cfg["batch_size"], "k": cfg["k"]}
    if variant.skip:
        return [{**base, "path": "fast", "note": variant.skip}]
    import torch

    from benchmarks.naive import naive_valuation
    from gmval.data import load_mnist
    from gmval.distances import create_distance
    from gmval.encoders.efficientnet import EfficientNetLite0Encoder
    from gmval.quality import create_quality_model
    from gmval.valuator import Valuator

    device, cuda = cfg["device"], cfg["device"].startswith("cuda")
    train = load_mnist("train").subset(np.arange(cfg["n_train"]), "mnist-train")
    generated = load_mnist("test")
    rss_base = rss_mb()

    start = time.perf_counter()
    encoder = EfficientNetLite0Encoder(cfg["resolution"], precision=cfg["precision"], device=device,
                                       batch_size=cfg["batch_size"])
    dist_kwargs = dict(variant.distance_kwargs)
    if variant.distance == "effnet-features":
        dist_kwargs["precision"] = cfg["precision"]
    distance = create_distance(variant.distance, device=device, batch_size=cfg["batch_size"], **dist_kwargs)
    quality = create_quality_model(variant.quality, device=device)
    setup_s = time.perf_counter() - start
    v = Valuator(encoder, distance, quality, k=cfg["k"], recall_k=cfg["recall_k"],
                 recall={"index": "flat", "precision": cfg["precision"]}, cache_dir=None, progress=False)
    start = time.perf_counter()
    v.fit(train)
    one_time_s = time.perf_counter() - start
    fit = {s: v.timings.get(s, 0.0) for s in ("embed_train", "index", "quality_fit")}
    assert v._index is not None
    base |= {"recall_k": v.recall_k(len(train)), "recall_precision": v._index.params()["precision"],
             "rss_base_mb": rss_base, "setup_s": setup_s,
             "one_time_s": one_time_s, **{f"{s}_s": t for s, t in fit.items()}}

    def measured(path: str, n: int, wall_s: float, timings: dict[str, float]) -> dict[str, Any]:
        row = {**base, "path": path, "n_generated": n, "per_sample_ms": 1e3 * wall_s / n,
               **{f"{s}_ms": 1e3 * timings.get(s, 0.0) / n for s in (*STAGES, *FORWARDS[1:])},
               "peak_rss_mb": peak_rss_mb(), **memory.peaks()}
        row["non_encoder_ms_per_sample"] = row["per_sample_ms"] - sum(row[f"{s}_ms"] for s in FORWARDS)
        if cuda:
            row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return row

    rows = []
    for n in cfg["n_generated"]:
        gen = generated.subset(np.arange(n), f"mnist-test-{n}")
        start = time.perf_counter()
        res = v.value(gen)
        rows.append(measured("fast", n, time.perf_counter() - start, res.timings))
    if cfg["naive_subset"]:
        n = cfg["naive_subset"]
        gen = generated.subset(np.arange(n), f"mnist-test-{n}")
        start = time.perf_counter()
        fast = v.value(gen)
        fast_row = measured("fast", n, time.perf_counter() - start, fast.timings)
        start = time.perf_counter()
        # The fit's training embeddings: recomputing them would double the one-time cost.
        naive = naive_valuation(v.encoder, v.distance, v.quality, train.images, v._train_emb, gen.images,
                                k=v.k, recall_k=v.recall_k(len(train)), temperature=v.temperature)
        naive_row = measured("naive", n, time.perf_counter() - start, naive.timings)
        fast_idx = fast.topk_indices()
        fast_values = fast.values["value"].to_numpy()
        naive_row |= {
            "one_time_s": fit["embed_train"], "index_s": 0.0,
            "naive_speedup": naive_row["per_sample_ms"] / fast_row["per_sample_ms"],
            "topk_match": float(np.mean([set(a) == set(b) for a, b in zip(fast_idx, naive.topk, strict=True)])),
            "topk_order_match": float(np.mean((fast_idx == naive.topk).all(axis=1))),
            "values_max_abs_diff": float(np.abs(fast_values - naive.values).max()),
            "note": "naive reuses the fit's training embeddings and builds no index",
        }
        for row in [*rows, fast_row]:
            row["naive_speedup"] = naive_row["per_sample_ms"] / row["per_sample_ms"]
        rows += [fast_row, naive_row]
    return rows


def run_task(task: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """One task (``"raw"`` or a variant name) with a private temporary folder.

    With ``cache_dir=None`` the valuator still streams its stages through memory-mapped
    files under the temporary folder and leaves them there; a private folder, removed
    afterwards, keeps a long run from filling ``/tmp``.
    """
    with tempfile.TemporaryDirectory(prefix="gmval-bench-") as tmp:
        previous, tempfile.tempdir = tempfile.tempdir, tmp
        memory = ResidentPeaks()
        try:
            return [raw_encoder_throughput(cfg, memory)] if task == "raw" else run_variant(task, cfg, memory)
        finally:
            memory.stop()
            tempfile.tempdir = previous


def _in_subprocess(task: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="gmval-bench-io-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"task": task, "cfg": cfg, "result": str(Path(tmp) / "rows.json")}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        # A failed variant becomes a row with its error, so the other variants still run.
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_engine", "--worker", str(spec)], check=False,
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode:
            tail = proc.stdout.strip().splitlines()[-1:] or ["no output"]
            print(proc.stdout[-4000:], file=sys.stderr)
            return [{"variant": task, "note": f"failed: exit {proc.returncode}: {tail[0][:200]}"}]
        return json.loads((Path(tmp) / "rows.json").read_text())


def _worker(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    rows = run_task(spec["task"], spec["cfg"])
    Path(spec["result"]).write_text(json.dumps(rows))


# ----------------------------------------------------------------------------- output
def finish_table(rows: list[dict[str, Any]], raw: dict[str, Any], machine: dict[str, Any]) -> pd.DataFrame:
    """Rows -> the CSV's table, with the raw-encoder columns and machine description on each row."""
    df = pd.DataFrame(rows)
    df["encoder_raw_img_per_s"] = raw.get("encoder_raw_img_per_s", np.nan)
    df["precision"] = raw.get("precision", "")
    if "per_sample_ms" in df:
        df["ratio_end_to_end_vs_raw"] = df["per_sample_ms"] / (1e3 / df["encoder_raw_img_per_s"])
    for key, value in machine.items():
        df[key] = value
    first = ["variant", "path", "distance", "distance_params", "quality", "n_train", "n_generated", "one_time_s",
             "per_sample_ms", *[f"{s}_ms" for s in STAGES], "distance_features_ms", "non_encoder_ms_per_sample",
             "encoder_raw_img_per_s",
             "ratio_end_to_end_vs_raw", "naive_speedup", "topk_match", "peak_rss_mb", "peak_anon_mb", "peak_file_mb"]
    return df[[c for c in first if c in df] + [c for c in df if c not in first]]


def plot(df: pd.DataFrame, png: Path) -> None:
    """Per-stage ms per sample of each variant (largest generated set), and naive vs engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fast = df[(df["path"] == "fast") & df["per_sample_ms"].notna()] if "per_sample_ms" in df else df.iloc[:0]
    if fast.empty:
        return
    # keep="last": when --naive-subset equals a generated-set size, the later row is the naive comparison's.
    largest = fast[fast["n_generated"] == fast["n_generated"].max()].drop_duplicates("variant", keep="last")
    largest = largest.set_index("variant")
    naive = df[df["path"] == "naive"].set_index("variant")
    fig, axes = plt.subplots(1, 2 if len(naive) else 1, figsize=(12 if len(naive) else 7, 3.8), squeeze=False)
    ax = axes[0, 0]
    (largest[[f"{s}_ms" for s in STAGES]].rename(columns=lambda c: c[:-3])).plot.barh(stacked=True, ax=ax)
    raw_ms = 1e3 / float(largest["encoder_raw_img_per_s"].iloc[0])
    ax.axvline(raw_ms, color="k", ls="--", lw=1, label=f"bare encoder forward ({raw_ms:.2g} ms)")
    ax.set_xlabel(f"ms per generated sample (n_generated={int(largest['n_generated'].iloc[0])})")
    ax.set_title(f"engine, n_train={int(largest['n_train'].iloc[0])}, caching off")
    ax.legend(fontsize=7, loc="best")
    if len(naive):
        ax = axes[0, 1]
        subset = fast[fast["n_generated"] == naive["n_generated"].iloc[0]].drop_duplicates("variant", keep="last")
        subset = subset.set_index("variant")
        pd.DataFrame({"naive Algorithm 1": naive["per_sample_ms"],
                      "engine": subset["per_sample_ms"].reindex(naive.index)}).plot.barh(ax=ax, logx=True)
        ax.set_xlabel(f"ms per generated sample (n_generated={int(naive['n_generated'].iloc[0])}, log)")
        ax.set_title("naive vs engine")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> pd.DataFrame | None:
    """Run the benchmark and write the CSV (and PNG); returns the table."""
    args = parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return None
    device = pick_device(args.device)
    cfg = {"n_train": args.n_train, "n_generated": args.n_generated, "naive_subset": args.naive_subset,
           "raw_images": args.raw_images, "resolution": args.resolution, "batch_size": args.batch_size,
           "k": args.k, "recall_k": args.recall_k, "device": device, "precision": args.precision}
    run = run_task if args.in_process else _in_subprocess
    machine = machine_info(device)
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    for task in ["raw", *args.variants]:
        start = time.perf_counter()
        result = run(task, cfg)
        if task == "raw":
            raw = result[0]
        else:
            rows += result
            # Rewritten after every variant, so a long run that dies keeps what it measured.
            write_csv(finish_table(rows, raw, machine), args.out)
        print(f"[bench_engine] {task}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    df = finish_table(rows, raw, machine)
    write_csv(df, args.out)
    plot(df, args.out.with_suffix(".png"))
    print_table(df, TABLE_COLUMNS)
    print(f"encoder raw throughput: {raw.get('encoder_raw_img_per_s', float('nan')):.1f} img/s; wrote {args.out}")
    return df


if __name__ == "__main__":
    main()
