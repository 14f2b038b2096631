"""Streaming benchmark: peak memory and throughput of ``gmval value`` on folders of image files.

For each training-set size it synthesises that many 128x128 RGB PNG files (smooth noise
with a few random shapes, so they compress like images and are all different) and a
fixed number of generated images, runs ``gmval value`` on the two folders with its
default settings in a child process (caching off, no figures), and samples the resident
memory of that process and its reader workers together. Folders are read lazily, so the
peak should stay flat as the folder grows; ``pixels_in_memory_mb`` is what holding the
training pixels alone would take.

Run ``python -m benchmarks.bench_streaming --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, HelpFormatter, machine_info, print_table, write_csv

SIDE = 128


def _write_images(folder: Path, start: int, stop: int, seed: int) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([seed, start])
    for i in range(start, stop):
        # smooth colour noise: an 8x8 field enlarged, plus pixel noise
        field = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(field).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(im)
        for _ in range(3):
            x0, y0 = rng.integers(0, SIDE - 16, size=2)
            x1, y1 = x0 + rng.integers(8, 48), y0 + rng.integers(8, 48)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
        arr = np.asarray(im, dtype=np.int16) + rng.integers(-8, 9, (SIDE, SIDE, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.png", compress_level=1)


def synthesise(folder: Path, n: int, seed: int, workers: int) -> float:
    """Write ``n`` PNG files into ``folder``; returns the seconds it took."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    step = 2_000
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_images, [folder] * len(range(0, n, step)), range(0, n, step),
                      [min(s + step, n) for s in range(0, n, step)], [seed] * len(range(0, n, step))))
    return time.perf_counter() - start


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run_value(train: Path, generated: Path, out: Path, extra: list[str], interval_s: float) -> dict[str, Any]:
    """Run ``gmval value`` in a child process; its wall time, peak tree RSS and stage timings."""
    cmd = [sys.executable, "-m", "gmval.cli", "value", "--train", str(train), "--generated", str(generated),
           "--out", str(out), "--no-cache", "--quiet", "--grid", "0", "--no-report", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"tree": 0.0, "main": 0.0}

    def sample() -> None:
        import psutil

        while proc.poll() is None:
            peak["tree"] = max(peak["tree"], _tree_rss_mb(proc.pid))
            try:
                peak["main"] = max(peak["main"], psutil.Process(proc.pid).memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                break
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"gmval value failed ({proc.returncode}):\n{stderr[-3000:]}")
    timings = json.loads((out / "config.json").read_text())["timings"]
    return {"wall_s": round(wall, 2), "peak_rss_tree_mb": round(peak["tree"], 1),
            "peak_rss_main_mb": round(peak["main"], 1), **{f"t_{k}": round(v, 2) for k, v in timings.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="training-set sizes, comma-separated")
    parser.add_argument("--n-generated", type=int, default=1_000, help="generated images (the same for every size)")
    parser.add_argument("--value-arg", action="append", default=[], help="extra `gmval value` argument (repeatable)")
    parser.add_argument("--workdir", default=None, help="where to write the images (default: a temporary folder)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", default=str(RESULTS / "streaming.csv"))
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.n_generated = [60, 120], 10
    workers = max(1, os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        gen_s = synthesise(root / "generated", args.n_generated, args.seed + 1, workers)
        made = 0
        for n in sorted(sizes):
            # each size's folder is the previous one plus new files
            gen_s += synthesise_more(root / "train", made, n, args.seed, workers)
            made = n
            run = run_value(root / "train", root / "generated", root / f"out{n}", args.value_arg, args.interval)
            total = n + args.n_generated
            rows.append({"n_train": n, "n_generated": args.n_generated, "side": SIDE, "channels": 3,
                         "synthesis_s": round(gen_s, 1), **run, "images_per_s": round(total / run["wall_s"], 1),
                         "pixels_in_memory_mb": round(n * 3 * SIDE * SIDE / 2**20, 1),
                         "value_args": " ".join(args.value_arg), **machine_info("cpu")})
            gen_s = 0.0
            write_csv(pd.DataFrame(rows), Path(args.out))
            print_table(pd.DataFrame(rows[-1:]), ["n_train", "wall_s", "images_per_s", "peak_rss_tree_mb",
                                                  "peak_rss_main_mb", "pixels_in_memory_mb"])
    print_table(pd.DataFrame(rows), ["n_train", "wall_s", "images_per_s", "peak_rss_tree_mb", "peak_rss_main_mb",
                                     "pixels_in_memory_mb"])
    return 0


def synthesise_more(folder: Path, have: int, want: int, seed: int, workers: int) -> float:
    """Extend ``folder`` from ``have`` to ``want`` images; returns the seconds it took."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    step = 2_000
    starts = list(range(have, want, step))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_images, [folder] * len(starts), starts, [min(s + step, want) for s in starts],
                      [seed] * len(starts)))
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
