"""Near-copy benchmark: does a lightly perturbed copy of a training image get it as its top contributor?

A memorisation audit (the paper's Appendix K) asks which training image a generated one
copies. Here the "generated" images are training images with one perturbation each, and a
setting scores the share of them whose source is the rank-1 contributor (top-1 rate):

* ``shift``: a translation of 1 to :data:`MAX_SHIFT` pixels in each direction (edges replicated);
* ``noise``: Gaussian sensor noise of standard deviation :data:`NOISE_STD` (of the range);
* ``jpeg``: JPEG recompression at a quality drawn from :data:`JPEG_QUALITY`;
* ``rescale``: a zoom about the centre by a factor within :data:`RESCALE` of 1, same size
  (cropped when enlarged, edge-padded when shrunk);
* ``jitter``: brightness and contrast changes within :data:`BRIGHTNESS` and :data:`CONTRAST`;
* ``all``: every one of the above, in that order.

Two training sets: MNIST training digits (small grey images; thousands of similar
digits per class), and RGB photo tiles: overlapping tiles cut from scikit-image's
bundled colour photographs (``skimage.data``: astronaut, chelsea, coffee, hubble deep
field, immunohistochemistry, rocket), flat tiles dropped, so neighbouring tiles are the
hard negatives. A C1 check (the identical-class ratio of notebook 08, MNIST test digits
against training digits) shows what each setting does to ordinary valuation.

Run ``python -m benchmarks.bench_nearcopy --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from benchmarks.common import RESULTS, HelpFormatter, machine_info, print_table, write_csv

MAX_SHIFT = 3
NOISE_STD = 0.04
JPEG_QUALITY = (50, 80)
RESCALE = 0.15
BRIGHTNESS = 0.1
CONTRAST = 0.2
TILE, TILE_STRIDE = 64, 32
PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "rocket")

#: Settings compared: name -> gmval.value keyword arguments. "old-default" is gmval's default
#: before this benchmark; "default" is whatever gmval.value uses now.
SETTINGS: dict[str, dict[str, Any]] = {
    "old-default": {"encoder": "efficientnet-lite0", "rerank": "none"},
    "effnet+shift-l2": {"encoder": "efficientnet-lite0", "rerank": "shift-l2"},
    "thumbnail+l2": {"encoder": "thumbnail", "rerank": "l2"},
    "thumbnail+shift-l2-K100": {"encoder": "thumbnail", "rerank": "shift-l2", "recall_k": 100},
    "thumbnail+shift-l2-K300": {"encoder": "thumbnail", "rerank": "shift-l2", "recall_k": 300},
    "thumbnail+shift-l2-noscale": {"encoder": "thumbnail", "rerank": ("shift-l2", {"scales": (1.0,)}),
                                   "recall_k": 300},
    "default": {},
}


def _shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    while True:
        dy, dx = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=2)
        if dy or dx:
            break
    h, w = img.shape[:2]
    pad = np.pad(img, ((MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT), (0, 0)), mode="edge")
    return pad[MAX_SHIFT + dy:MAX_SHIFT + dy + h, MAX_SHIFT + dx:MAX_SHIFT + dx + w]


def _noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.rint(img + rng.normal(0, NOISE_STD * 255, img.shape)), 0, 255).astype(np.uint8)


def _pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)


def _array(im: Image.Image) -> np.ndarray:
    arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _jpeg(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    _pil(img).save(buf, format="JPEG", quality=int(rng.integers(*JPEG_QUALITY, endpoint=True)))
    return _array(Image.open(buf))


def _rescale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(1 - RESCALE, 1 + RESCALE)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    big = _array(_pil(img).resize((nw, nh), Image.Resampling.BICUBIC))
    if nh >= h:
        top, left = (nh - h) // 2, (nw - w) // 2
        return big[top:top + h, left:left + w]
    top, left = (h - nh) // 2, (w - nw) // 2
    return np.pad(big, ((top, h - nh - top), (left, w - nw - left), (0, 0)), mode="edge")


def _jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float64)
    c, b = rng.uniform(1 - CONTRAST, 1 + CONTRAST), rng.uniform(-BRIGHTNESS, BRIGHTNESS) * 255
    return np.clip(np.rint((x - x.mean()) * c + x.mean() + b), 0, 255).astype(np.uint8)


PERTURBATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "shift": _shift, "noise": _noise, "jpeg": _jpeg, "rescale": _rescale, "jitter": _jitter}


def perturb(images: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the same images each with perturbation ``kind`` (or ``"all"``)."""
    rng = np.random.default_rng(seed)
    steps = list(PERTURBATIONS.values()) if kind == "all" else [PERTURBATIONS[kind]]
    out = []
    for img in images.permute(0, 2, 3, 1).numpy():
        for step in steps:
            img = step(img, rng)
        out.append(np.ascontiguousarray(img))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def photo_tiles() -> Any:
    """Overlapping RGB tiles of scikit-image's colour sample photos, flat ones dropped."""
    import skimage.data

    from gmval.images import ImageSet

    tiles, ids = [], []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        h, w = img.shape[:2]
        for top in range(0, h - TILE + 1, TILE_STRIDE):
            for left in range(0, w - TILE + 1, TILE_STRIDE):
                tile = img[top:top + TILE, left:left + TILE]
                if tile.std() >= 12:  # sky, background, black space: no image to copy
                    tiles.append(tile)
                    ids.append(f"{name}/{top}_{left}")
    x = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).contiguous()
    return ImageSet(x, np.array(ids), name="photo-tiles")


def digits(n_train: int) -> Any:
    from gmval.data import load_mnist

    train = load_mnist("train")
    return train.subset(range(min(n_train, len(train))), "mnist-train")


def near_copy_rows(train: Any, settings: dict[str, dict[str, Any]], n_gen: int, seed: int,
                   perturbations: list[str]) -> list[dict[str, Any]]:
    """Top-1 rate of each setting on each perturbation of ``n_gen`` random training images."""
    from gmval.valuator import Valuator

    rng = np.random.default_rng(seed)
    sources = np.sort(rng.choice(len(train), size=min(n_gen, len(train)), replace=False))
    gens = {kind: perturb(train.images[torch.from_numpy(sources)], kind, seed + i)
            for i, kind in enumerate(perturbations)}
    rows = []
    for name, kw in settings.items():
        kw = dict(kw)
        v = Valuator(kw.pop("encoder", _default("encoder")), kw.pop("rerank", _default("rerank")), cache_dir=None,
                     progress=False, **kw)
        start = time.perf_counter()
        v.fit(train)
        fit_s = time.perf_counter() - start
        for kind, gen in gens.items():
            start = time.perf_counter()
            res = v.value(gen)
            top1 = res.topk_indices()[:, 0] == sources
            rows.append({"dataset": train.name, "setting": name, "encoder": v.encoder.name,
                         "encoder_params": str(v.encoder.params()), "rerank": v.distance.name,
                         "rerank_params": str(v.distance.params()), "recall_k": v.recall_k(len(train)),
                         "perturbation": kind, "n_train": len(train), "n_generated": len(sources),
                         "top1": float(top1.mean()), "fit_s": round(fit_s, 2),
                         "value_s": round(time.perf_counter() - start, 2)})
            print(rows[-1]["dataset"], name, kind, f"{rows[-1]['top1']:.3f}", flush=True)
    return rows


def _default(which: str) -> Any:
    import inspect

    from gmval.valuator import value

    return inspect.signature(value).parameters[which].default


def c1_rows(settings: dict[str, dict[str, Any]], n_train: int, n_test: int) -> list[dict[str, Any]]:
    """C1 (identical-class ratio at k 30, 50, 100) on MNIST test digits for each setting."""
    from gmval.data import load_mnist
    from gmval.evaluation import identical_class_ratio
    from gmval.valuator import Valuator

    train = digits(n_train)
    test = load_mnist("test")
    test = test.subset(range(min(n_test, len(test))), "mnist-test")
    rows = []
    for name, kw in settings.items():
        kw = dict(kw)
        v = Valuator(kw.pop("encoder", _default("encoder")), kw.pop("rerank", _default("rerank")), k=100,
                     recall_k=max(200, kw.pop("recall_k", 0)), cache_dir=None, progress=False, **kw)
        start = time.perf_counter()
        res = v.fit(train).value(test)
        rho = identical_class_ratio(res.attribution(), train.labels, test.labels, ks=(30, 50, 100))
        rows.append({"setting": name, "encoder": v.encoder.name, "rerank": v.distance.name, "n_train": len(train),
                     "n_test": len(test), **{f"rho@{k}": 100 * r for k, r in rho.items()},
                     "seconds": round(time.perf_counter() - start, 1)})
        print("C1", name, {k: round(v, 2) for k, v in rows[-1].items() if k.startswith("rho")}, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names from SETTINGS")
    parser.add_argument("--n-train", type=int, default=60_000, help="MNIST training digits")
    parser.add_argument("--n-generated", type=int, default=200, help="perturbed copies per perturbation")
    parser.add_argument("--c1-train", type=int, default=30_000, help="training digits of the C1 check (0: skip)")
    parser.add_argument("--c1-test", type=int, default=10_000, help="test digits of the C1 check")
    parser.add_argument("--datasets", default="digits,photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", default=str(RESULTS / "nearcopy.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.quick:
        args.n_train, args.n_generated, args.c1_train, args.c1_test = 300, 10, 300, 50
    chosen = {name: SETTINGS[name] for name in args.settings.split(",")}
    perturbations = [*PERTURBATIONS, "all"]
    rows: list[dict[str, Any]] = []
    info = machine_info("cpu")
    out = Path(args.out)
    for dataset in args.datasets.split(","):
        train = digits(args.n_train) if dataset == "digits" else photo_tiles()
        if args.quick and dataset == "photos":
            train = train.subset(range(0, len(train), max(1, len(train) // 300)))
        rows += near_copy_rows(train, chosen, args.n_generated, args.seed, perturbations)
        write_csv(pd.DataFrame([{**r, **info} for r in rows]), out)
    frame = pd.DataFrame([{**r, **info} for r in rows])
    write_csv(frame, out)
    print_table(frame.pivot_table(index=["dataset", "perturbation"], columns="setting", values="top1").reset_index(),
                ["dataset", "perturbation", *chosen])
    if args.c1_train:
        c1 = pd.DataFrame([{**r, **info} for r in c1_rows(chosen, args.c1_train, args.c1_test)])
        write_csv(c1, out.with_name(out.stem + "_c1.csv"))
        print_table(c1, ["setting", "rho@30", "rho@50", "rho@100", "seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
