"""Command line: ``gmval value --train DIR --generated DIR --out DIR [options]``.

Writes ``values.csv`` (one row per training image), ``contributors.csv`` (top-k per
generated image), ``config.json`` (settings and stage timings), ``contributors.png``
(a few generated images beside their top contributors) and ``report.html`` (all of it
on one self-contained page that opens offline).
``--train`` and ``--generated`` also accept a registered dataset, e.g. ``mnist:train``.
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from gmval import paths


def _kv(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"gmval: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def _load(spec: str, size: tuple[int, int] | None, limit: int | None, name: str, skip_corrupt: bool) -> Any:
    from gmval.data import load_dataset, load_folder

    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise SystemExit(f"gmval: {name} {spec!r} is not a folder")
        images = load_folder(path, size=size, skip_corrupt=skip_corrupt)
    else:
        dataset, _, split = spec.partition(":")
        try:
            images = load_dataset(dataset, split=split or "train")
        except KeyError:
            raise SystemExit(f"gmval: {name} {spec!r} is neither a folder nor a dataset name") from None
    if limit is not None and limit < len(images):
        images = images.subset(range(limit))
    return images


def build_parser() -> argparse.ArgumentParser:
    from gmval.valuator import DEFAULT_DISTANCE, DEFAULT_ENCODER

    parser = argparse.ArgumentParser(prog="gmval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("value", help="value training images by their contributions to generated images")
    v.add_argument("--train", required=True, help="folder of training images, or DATASET[:SPLIT]")
    v.add_argument("--generated", required=True, help="folder of generated images, or DATASET[:SPLIT]")
    v.add_argument("--out", required=True, type=Path, help="output folder")
    v.add_argument("--encoder", default=DEFAULT_ENCODER, help="recall encoder (see `gmval list`)")
    v.add_argument("--encoder-arg", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--rerank", default=DEFAULT_DISTANCE, help="re-ranking distance; 'none' = No-Rerank")
    v.add_argument("--rerank-arg", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--quality", default="none", help="quality model for q_j; 'none' = no calibration")
    v.add_argument("--quality-arg", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("-k", "--k", type=int, default=30, help="contributors per generated image")
    v.add_argument("--recall-k", type=int, default=None, help="candidates recalled before re-ranking")
    v.add_argument("--index", default="flat", choices=["flat", "pq", "ivfpq", "hnsw"], help="recall index")
    v.add_argument("--index-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="m, nbits, nlist, nprobe, coarse (pq, ivfpq); hnsw_m, ef_construction, ef_search "
                        "(hnsw); refine, train_samples, seed")
    v.add_argument("--temperature", default="1.0", help="T in exp(-d/T), or 'auto'")
    v.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="read folder images on an H x W grid (default: their size when they share one, "
                        "else centred squares of the median short side; see gmval.data.folder)")
    v.add_argument("--skip-corrupt", action="store_true",
                   help="check every image file first and skip unreadable ones with a warning")
    v.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    v.add_argument("--limit-generated", type=int, default=None, help="use only the first N generated images")
    v.add_argument("--cache-dir", type=Path, default=paths.CACHE, help="artefact cache ('none' disables)")
    v.add_argument("--no-cache", action="store_true", help="do not read or write cached artefacts")
    v.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    v.add_argument("--grid", type=int, default=6, help="generated images in contributors.png (0: none)")
    v.add_argument("--no-report", action="store_true", help="do not write report.html")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.add_parser("list", help="list encoders, distances, quality models and datasets")
    return parser


def run_value(args: argparse.Namespace) -> dict[str, Any]:
    """Execute ``gmval value``; returns the stage timings."""
    from gmval.valuator import Valuator

    size = tuple(args.size) if args.size else None
    train = _load(args.train, size, args.limit_train, "--train", args.skip_corrupt)
    # read on its own grid; the valuator brings it to the training grid
    generated = _load(args.generated, size, args.limit_generated, "--generated", args.skip_corrupt)
    temperature: float | str = args.temperature if args.temperature == "auto" else float(args.temperature)
    valuator = Valuator((args.encoder, _kv(args.encoder_arg)), (args.rerank, _kv(args.rerank_arg)),
                        (args.quality, _kv(args.quality_arg)), k=args.k, recall_k=args.recall_k,
                        recall={"index": args.index, **_kv(args.index_arg)}, temperature=temperature,
                        cache_dir=None if args.no_cache else args.cache_dir, progress=not args.quiet,
                        device=args.device)
    result = valuator.fit(train).value(generated)
    files = result.save(args.out)
    if args.grid > 0:
        from gmval.plotting import contributor_grid, save_figure

        rows = list(range(min(args.grid, len(generated))))
        contrib = result.contributors["contribution"].to_numpy().reshape(-1, result.k)
        fig = contributor_grid(result.topk_indices(), train, generated, rows, n_contributors=min(8, result.k),
                               contributions=contrib, title=f"{args.encoder} / {args.rerank} / {args.quality}")
        files["grid"] = save_figure(fig, args.out / "contributors", formats=("png",))[0]
    if not args.no_report:
        from gmval.report import write_report

        files["report"] = write_report(args.out / "report.html", result, train, generated,
                                       n_generated=max(args.grid, 1), command=getattr(args, "command_line", None))
    for name, path in files.items():
        print(f"{name}: {path}")
    print(json.dumps({"timings_s": {k: round(v, 3) for k, v in result.timings.items()}}))
    return result.timings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["gmval", *(sys.argv[1:] if argv is None else argv)])
    if args.command == "list":
        import gmval
        from gmval.data import list_datasets

        for kind, names in (("encoders", gmval.list_encoders()), ("distances", gmval.list_distances()),
                            ("quality", gmval.list_quality_models()), ("datasets", list_datasets())):
            print(f"{kind}: {', '.join(names)}")
        return 0
    try:
        run_value(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        print(f"gmval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
