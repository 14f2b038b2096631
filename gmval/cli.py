"""Command line: ``gmval value --train DIR --generated DIR --out DIR [options]``.

Writes ``values.csv`` (one row per training image), ``contributors.csv`` (top-k per
generated image), ``config.json`` (settings and stage timings), ``contributors.png``
(a few generated images beside their top contributors) and ``report.html`` (all of it
on one self-contained page that opens offline).
``--train`` and ``--generated`` also accept a registered dataset, e.g. ``mnist:train``.

The files are written to a temporary folder beside ``--out`` and moved into place as a
whole, so ``--out`` holds one run's results or the previous ones, never a mix. An existing
``--out`` is replaced only if it is empty or an earlier gmval output (it has gmval's
``config.json``); ``--out`` inside an input folder, or an input inside ``--out``, is refused.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import sys
import tempfile
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
    v.add_argument("--cache-dir", default=str(paths.CACHE), help="artefact cache ('none' disables)")
    v.add_argument("--no-cache", action="store_true", help="do not read or write cached artefacts")
    v.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    v.add_argument("--grid", type=int, default=6, help="generated images in contributors.png (0: none)")
    v.add_argument("--no-report", action="store_true", help="do not write report.html")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.add_parser("list", help="list encoders, distances, quality models and datasets")
    return parser


def _within(inner: Path, outer: Path) -> bool:
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents


def _check_out(out: Path, inputs: dict[str, str]) -> None:
    """Refuse an ``--out`` that would feed the next run's inputs, delete them, or replace a user's folder."""
    for name, spec in inputs.items():
        folder = Path(spec)
        if not folder.is_dir():
            continue  # a dataset name
        if _within(out, folder):
            raise ValueError(f"--out {out} is inside {name} {spec}: its files would become input images; "
                             f"choose an --out outside it")
        if _within(folder, out):
            raise ValueError(f"{name} {spec} is inside --out {out}, which is replaced as a whole; "
                             f"choose another --out")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_gmval_output(out):
        raise ValueError(f"--out {out} exists and is not an earlier gmval output (no gmval config.json); "
                         f"choose a new or empty folder")


def _is_gmval_output(folder: Path) -> bool:
    try:
        written = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(written, dict) and {"config", "timings"} <= written.keys()


def _staging(out: Path) -> Path:
    """An empty folder beside ``out`` (same file system, so it can be renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)  # mkdtemp's 0o700 would make the results private
    return folder


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.replace(out, old)  # over the empty placeholder
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def run_value(args: argparse.Namespace) -> dict[str, Any]:
    """Execute ``gmval value``; returns the stage timings."""
    out: Path = args.out
    _check_out(out, {"--train": args.train, "--generated": args.generated})
    staging = _staging(out)
    try:
        timings = _value_into(args, staging)
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return timings


def _value_into(args: argparse.Namespace, staging: Path) -> dict[str, Any]:
    from gmval.valuator import Valuator

    size = tuple(args.size) if args.size else None
    train = _load(args.train, size, args.limit_train, "--train", args.skip_corrupt)
    # read on its own grid; the valuator brings it to the training grid
    generated = _load(args.generated, size, args.limit_generated, "--generated", args.skip_corrupt)
    temperature: float | str = args.temperature if args.temperature == "auto" else float(args.temperature)
    valuator = Valuator((args.encoder, _kv(args.encoder_arg)), (args.rerank, _kv(args.rerank_arg)),
                        (args.quality, _kv(args.quality_arg)), k=args.k, recall_k=args.recall_k,
                        recall={"index": args.index, **_kv(args.index_arg)}, temperature=temperature,
                        cache_dir=_cache_dir(args), progress=not args.quiet,
                        device=args.device)
    result = valuator.fit(train).value(generated)
    files = result.save(staging)
    if args.grid > 0:
        from gmval.plotting import contributor_grid, save_figure

        rows = list(range(min(args.grid, len(generated))))
        contrib = result.contributors["contribution"].to_numpy().reshape(-1, result.k)
        fig = contributor_grid(result.topk_indices(), train, generated, rows, n_contributors=min(8, result.k),
                               contributions=contrib, title=f"{args.encoder} / {args.rerank} / {args.quality}")
        files["grid"] = save_figure(fig, staging / "contributors", formats=("png",))[0]
    if not args.no_report:
        from gmval.report import write_report

        files["report"] = write_report(staging / "report.html", result, train, generated,
                                       n_generated=max(args.grid, 1), command=getattr(args, "command_line", None))
    for name, path in files.items():
        print(f"{name}: {args.out / path.relative_to(staging)}")
    print(json.dumps({"timings_s": {k: round(v, 3) for k, v in result.timings.items()}}))
    return result.timings


def _cache_dir(args: argparse.Namespace) -> Path | None:
    if args.no_cache or args.cache_dir.lower() == "none":
        return None
    return Path(args.cache_dir)


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
    except OSError as exc:  # full disk, permissions, a file where a folder should be
        where = f": {exc.filename}" if exc.filename else ""
        print(f"gmval: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, RuntimeError) as exc:
        print(f"gmval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
