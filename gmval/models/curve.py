"""Sample quality against training length: train a zoo generator once, keep a snapshot per epoch, score each.

A zoo run's randomness depends on ``(seed, step)`` only and its learning rate is constant, so
the snapshot of epoch ``e`` of a long run holds exactly the weights an ``e``-epoch run ends
with. One long run therefore measures the whole curve, and any of its snapshots can be
committed as the shorter run's result (:mod:`gmval.models.pretrained`).

The curve's run lives in ``<data>/curves/<zoo folder name of the longest run>/``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from gmval import paths, verdicts
from gmval.images import ImageSet
from gmval.models import zoo
from gmval.models.training import PARAMS, list_snapshots, load_weights
from gmval.profiles import Profile, profile_settings

#: The modules that sample, per kind (what :func:`snapshot_sampler` loads).
SAMPLER_MODULE = {"gan": "generator_ema", "diffusion": "ema", "vae": "vae"}


def with_epochs(name: str, profile: Profile, epochs: int) -> dict[str, Any]:
    """``profile`` (as a dict) with generator ``name``'s training length set to ``epochs``."""
    settings = profile_settings(profile)  # a fresh copy
    spec = zoo.GENERATORS[name]
    if spec.curation == "half-class":
        settings["models"]["half_class"]["epochs"][spec.kind] = epochs
    else:
        settings["models"][spec.kind]["epochs"] = epochs
    return settings


def curve_folder(name: str, profile: Profile, epochs: int, root: Path | None = None) -> Path:
    """Where the curve run of ``name`` trained for ``epochs`` lives."""
    base = paths.DATA if root is None else Path(root)
    return base / "curves" / zoo.generator_folder(name, with_epochs(name, profile, epochs), root).name


def train_curve(name: str, profile: Profile, epochs: int, root: Path | None = None,
                progress: bool = False) -> Path:
    """Train (or resume) ``name`` for ``epochs`` with a snapshot after every epoch; returns the run's folder."""
    settings = with_epochs(name, profile, epochs)
    plan = zoo._plan(name, settings, root)
    per_epoch = plan.train_config.steps_per_epoch(len(plan.data.train))
    config = dataclasses.replace(plan.train_config, keep_every=per_epoch)
    folder = curve_folder(name, profile, epochs, root)
    zoo.train_plan(plan, settings, folder=folder, train_config=config, progress=progress)
    return folder


def snapshot_sampler(name: str, profile: Profile, folder: Path, path: Path) -> nn.Module:
    """The sampling model of ``name`` with the weights of snapshot ``path`` of curve run ``folder``."""
    run = json.loads((folder / PARAMS).read_text())
    model = zoo.build_sampler(name, profile, run)
    load_weights(path, {SAMPLER_MODULE[zoo.GENERATORS[name].kind]: model})
    return model.eval()


def _scorer(name: str, profile: Profile, root: Path | None
            ) -> tuple[zoo._Plan, int, Callable[[nn.Module, str], dict[str, Any]]]:
    """(plan, steps per epoch, score): ``score(model, tag)`` draws the quality samples of ``model`` as
    :func:`zoo.quality <gmval.models.zoo.quality>` does and measures them with :func:`zoo.sample_quality`."""
    m = profile_settings(profile)["models"]
    plan = zoo._plan(name, profile, root)
    classifier, _ = zoo.get_classifier(plan.dataset, profile, root, progress=False)
    reference = zoo.reference_images(name, profile)
    real_train = zoo._capped(plan.data.train, m["quality_samples"], m["seed"])

    label = zoo.single_class(name, profile)
    conditional = zoo.model_kind(plan.kind).conditional

    def score(model: nn.Module, tag: str) -> dict[str, Any]:
        images, labels = zoo.draw(model, m["quality_samples"], zoo.QUALITY_SEED, profile, plan.dataset, root,
                                  label=zoo.quality_label(name, profile))
        fake = ImageSet(images=images, ids=np.arange(len(images)), labels=labels, name=f"{name}-{tag}")
        return zoo.sample_quality(fake, plan.dataset, reference, real_train, classifier, conditional, label)

    return plan, plan.train_config.steps_per_epoch(len(plan.data.train)), score


def curve_quality(name: str, profile: Profile, folder: Path, root: Path | None = None, every: int = 1) -> pd.DataFrame:
    """One row per snapshot of curve run ``folder``: epoch, step, wall seconds since the start, and quality.

    ``every``: score only the snapshots of every ``every``-th epoch, and the last (a diffusion
    model's samples are slow to draw).

    The seconds come from the snapshot files' times, so they are the wall time of this run on
    its machine (with whatever else ran beside it), not a benchmark.
    """
    plan, per_epoch, score = _scorer(name, profile, root)
    start = (folder / PARAMS).stat().st_mtime
    rows = []
    snapshots = list_snapshots(folder)
    for step, path in snapshots:
        if (step // per_epoch) % every and (step, path) != snapshots[-1]:
            continue
        model = snapshot_sampler(name, profile, folder, path)
        began = time.perf_counter()
        report = score(model, f"step{step}")
        rows.append({"generator": name, "kind": plan.kind, "epoch": step // per_epoch, "step": step,
                     "wall_seconds": round(path.stat().st_mtime - start, 1),
                     "sample_seconds": round(time.perf_counter() - began, 1),
                     **{k: v for k, v in report.items() if k != "class_histogram"},
                     "fd_ratio": report["fd"] / report["fd_real"],
                     "min_class": min(report["class_histogram"]), "max_class": max(report["class_histogram"]),
                     "gate_failures": "; ".join(verdicts.gate_failures({**report, "generator": name}))})
    return pd.DataFrame(rows)


def sampling_sweep(name: str, profile: Profile, folder: Path, epoch: int,
                   settings: list[tuple[float, int]], root: Path | None = None) -> pd.DataFrame:
    """Quality of a diffusion snapshot of curve run ``folder`` for each (guidance scale, DDIM steps) in ``settings``.

    Guidance trades diversity (FD) for class accuracy; the profile's sampling settings are chosen on this.
    """
    _, per_epoch, score = _scorer(name, profile, root)
    path = dict(list_snapshots(folder))[epoch * per_epoch]
    rows = []
    for guidance, steps in settings:
        model = snapshot_sampler(name, profile, folder, path)
        model.guidance_scale, model.sampling_steps = guidance, steps
        report = score(model, f"g{guidance}-s{steps}")
        rows.append({"generator": name, "epoch": epoch, "guidance_scale": guidance, "sampling_steps": steps,
                     "fd": report["fd"], "fd_real": report["fd_real"], "fd_ratio": report["fd"] / report["fd_real"],
                     "class_accuracy": report["class_accuracy"], "confident_share": report["confident_share"],
                     "gate_failures": "; ".join(verdicts.gate_failures({**report, "generator": name}))})
    return pd.DataFrame(rows)


#: The modules a committed model keeps: the sampler, plus the live pair IF4GAN traces where a
#: baseline reads it (the noisy-MNIST GAN of C3).
COMMITTED_MODULES = {"gan": ["generator_ema"], "diffusion": ["ema"], "vae": ["vae"]}
KEEP_ALL = ("noisy-mnist-gan",)


def export_snapshot(name: str, profile: Profile, epochs: int, epoch: int, record: dict[str, Any],
                    root: Path | None = None, directory: Path | None = None) -> Path:
    """Commit the epoch-``epoch`` snapshot of ``name``'s ``epochs``-long curve run as the ``epoch``-epoch model.

    The manifest key is the zoo folder name of ``profile`` with ``name`` trained for ``epoch``
    epochs; its ``params.json`` is the curve run's with that training length and the profile's
    snapshot cadence (the only two settings in which the runs differ).

    Raises:
        ValueError: if ``profile`` asks for snapshots the curve run did not keep.
    """
    from gmval.models import pretrained

    folder = curve_folder(name, profile, epochs, root)
    target = zoo._plan(name, with_epochs(name, profile, epoch), root)
    per_epoch = target.train_config.steps_per_epoch(len(target.data.train))
    step = epoch * per_epoch
    params = json.loads((folder / PARAMS).read_text())
    params["train"] = {**params["train"], "epochs": epoch, "keep_every": target.train_config.keep_every}
    snapshots = dict(list_snapshots(folder))
    kept = []
    if target.train_config.keep_every:
        wanted = range(target.train_config.keep_every, step + 1, target.train_config.keep_every)
        missing = [s for s in wanted if s not in snapshots]
        if missing:
            raise ValueError(f"{folder} keeps no snapshot at steps {missing[:3]}...; the profile wants them")
        kept = [(s, snapshots[s]) for s in wanted]
    kind = zoo.GENERATORS[name].kind
    modules = None if name in KEEP_ALL else COMMITTED_MODULES[kind]
    return pretrained.export(target.folder.name, params, snapshots[step], record, modules=modules,
                             snapshots=kept, directory=directory)


TRAINED_BY = "python -m gmval.models.curve train (the zoo's own training code): one run, a snapshot per epoch"


def export_record(name: str, profile: Profile, epochs: int, epoch: int, quality: pd.DataFrame,
                  code_commit: str, root: Path | None = None) -> dict[str, Any]:
    """What the manifest states beside the hash of the epoch-``epoch`` snapshot of a curve run.

    ``quality`` is the run's scored curve (:func:`curve_quality`) or a sampling sweep of that
    snapshot; its row of epoch ``epoch`` (the only row, for a sweep) is the sample quality
    recorded. The training time is the snapshot's file time since the run's start, so it is the
    wall time on this machine with whatever ran beside it.

    Raises:
        ValueError: if ``quality`` holds no single row for ``epoch``.
    """
    from gmval.models import pretrained

    folder = curve_folder(name, profile, epochs, root)
    plan = zoo._plan(name, with_epochs(name, profile, epoch), root)
    step = epoch * plan.train_config.steps_per_epoch(len(plan.data.train))
    rows = quality[quality["epoch"] == epoch]
    if len(rows) != 1:
        raise ValueError(f"the quality table has {len(rows)} rows for epoch {epoch} of {name}; it needs one")
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v)
           for k, v in rows.iloc[0].to_dict().items() if k not in ("generator", "kind", "epoch", "step",
                                                                    "wall_seconds", "sample_seconds")}
    snapshot = dict(list_snapshots(folder))[step]
    return {"profile": profile if isinstance(profile, str) else "custom", "trained_by": TRAINED_BY,
            "code_commit": code_commit, "hardware": pretrained.hardware() + ", beside other jobs",
            "epochs": epoch,
            "training_wall_seconds": round(snapshot.stat().st_mtime - (folder / PARAMS).stat().st_mtime, 1),
            "quality": row}


def main(argv: list[str] | None = None) -> None:
    """``python -m gmval.models.curve train|score|export NAME EPOCHS [EPOCH] [--out CSV] [--quality CSV]``."""
    import argparse
    import subprocess

    import torch

    parser = argparse.ArgumentParser(prog="python -m gmval.models.curve", description=main.__doc__)
    parser.add_argument("command", choices=("train", "score", "export"))
    parser.add_argument("name", choices=sorted(zoo.GENERATORS))
    parser.add_argument("epochs", type=int, help="length of the curve run")
    parser.add_argument("epoch", type=int, nargs="?", help="export: the snapshot committed")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--out", type=Path, help="score: CSV written")
    parser.add_argument("--every", type=int, default=1, help="score: every this many epochs, and the last")
    parser.add_argument("--quality", type=Path, help="export: the scored curve or sweep CSV whose row is recorded")
    parser.add_argument("--code-commit", help="export: the commit that trained the run (default: HEAD)")
    args = parser.parse_args(argv)
    # One thread per run: two runs side by side use a 2-core machine better than one two-thread run.
    torch.set_num_threads(1)
    if args.command == "train":
        print(train_curve(args.name, args.profile, args.epochs))
    elif args.command == "score":
        table = curve_quality(args.name, args.profile, curve_folder(args.name, args.profile, args.epochs),
                              every=args.every)
        if args.out:
            table.to_csv(args.out, index=False, float_format="%.6g")
        print(table.to_string())
    else:
        if args.epoch is None or args.quality is None:
            parser.error("export needs EPOCH and --quality")
        commit = args.code_commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT,
                                                    capture_output=True, text=True, check=True).stdout.strip()
        record = export_record(args.name, args.profile, args.epochs, args.epoch, pd.read_csv(args.quality), commit)
        print(export_snapshot(args.name, args.profile, args.epochs, args.epoch, record))


if __name__ == "__main__":
    main()
