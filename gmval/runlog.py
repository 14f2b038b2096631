"""What ``./run_all.sh`` leaves for a reader besides the result tables: its timings and its notebooks.

* ``figures/timings/run_all.csv``: one row per profile and step (the setup, then each
  notebook) with its wall seconds, when it finished, the commit, the machine, and whether the
  run started without caches (a fresh clone: every artefact computed, none reused). A rerun of a
  step replaces its row. The README's run-time paragraph is generated from this table
  (:func:`runtime_sentences`), so it never states a time no run measured; timings stay out of
  the result CSVs, which are byte-identical across identical reruns.
* ``figures/notebooks/<name>.ipynb``: each executed notebook, readable without running anything,
  made byte-stable (:func:`publish_notebook`): papermill's per-cell clocks move to the timing
  table's world (dropped here) and stderr streams (progress bars, whose rates change every run)
  are removed, and the checkout's path becomes ``<repo>``; every figure and printed result stays.

``python -m gmval.runlog record PROFILE STEP SECONDS FRESH [--executed EXECUTED.ipynb]`` is what
``run_all.sh`` calls, once per step (one interpreter start-up: importing gmval imports torch);
``python -m gmval.runlog publish EXECUTED.ipynb`` publishes alone.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from gmval import paths
from gmval.store import atomic_write_text

COLUMNS = ["profile", "step", "seconds", "finished_utc", "commit", "machine", "fresh"]
#: Cell and notebook metadata that papermill fills with clocks.
_CLOCK_KEYS = ("start_time", "end_time", "duration", "exception")


def timings_csv(folder: Path | None = None) -> Path:
    """Where the run's timing table lives (``<figures>/timings/run_all.csv``)."""
    return (paths.FIGURES if folder is None else folder) / "timings" / "run_all.csv"


def machine() -> str:
    """The CPU model and core count (and the GPU, when ``nvidia-smi`` names one)."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    text = f"{model or 'CPU'}, {os.cpu_count()} cores"
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        gpu = []
    return text + (f", GPU {gpu[0]}" if gpu else ", no GPU")


def commit() -> str:
    """The checkout's short commit, with ``+changes`` when tracked code differs from it; empty outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(paths.ROOT), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        # What the run itself rewrites (figures/, the README's generated blocks) is not a change of code.
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":(exclude)figures", ":(exclude)README.md")
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+changes" if dirty else "")


def record(profile: str, step: str, seconds: float, fresh: bool, folder: Path | None = None,
           when: dt.datetime | None = None) -> pd.DataFrame:
    """Add (or replace) the row of ``(profile, step)`` in the timing table; return the table.

    Raises:
        ValueError: for a negative or non-finite ``seconds``.
    """
    if not (seconds >= 0 and seconds != float("inf")):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    path = timings_csv(folder)
    table = pd.read_csv(path, dtype={"step": str, "commit": str}) if path.exists() else pd.DataFrame(columns=COLUMNS)
    when = when or dt.datetime.now(dt.timezone.utc)
    row = {"profile": profile, "step": step, "seconds": round(float(seconds), 1),
           "finished_utc": when.strftime("%Y-%m-%d %H:%M"), "commit": commit(), "machine": machine(),
           "fresh": int(fresh)}
    table = table[~((table["profile"] == profile) & (table["step"] == step))]
    table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    table = table.sort_values(["profile", "step"], key=lambda s: s.map(_step_order) if s.name == "step" else s)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, table[COLUMNS].to_csv(index=False))
    return table.reset_index(drop=True)


def _step_order(step: str) -> str:
    # "setup" first, then the notebooks in their numbered order.
    return "" if step == "setup" else step


def runtime_sentences(folder: Path | None = None, profile: str = "default") -> str:
    """The README's run-time paragraph, from the timing table's rows of ``profile``; empty without them."""
    path = timings_csv(folder)
    if not path.exists():
        return ""
    table = pd.read_csv(path, dtype={"step": str, "commit": str})
    rows = table[table["profile"] == profile]
    if rows.empty:
        return ""
    notebooks = rows[rows["step"] != "setup"]
    setup = rows[rows["step"] == "setup"]["seconds"]
    dates = sorted(rows["finished_utc"].str[:10].unique())
    commits = sorted(rows["commit"].fillna("").unique())
    fresh = rows["fresh"].astype(bool)
    how = ("a fresh clone (every artefact computed)" if fresh.all() else
           "caches from earlier runs reused" if not fresh.any() else
           "some steps from a fresh clone, others reusing caches")
    parts = [f"{r.step.split('_', 1)[0]} {r.seconds / 60:.1f}" for r in notebooks.itertuples()]
    total = rows["seconds"].sum()
    text = (f"**Run time** of `./run_all.sh --profile {profile}` (`figures/timings/run_all.csv`, "
            f"{' to '.join(dict.fromkeys([dates[0], dates[-1]]))}, {'; '.join(sorted(rows['machine'].unique()))}, "
            f"commit {', '.join(commits)}; {how}): ")
    if len(setup):
        text += f"{setup.iloc[0]:.0f} s of setup, "
    text += (f"minutes per notebook {', '.join(parts)}: {notebooks['seconds'].sum() / 60:.1f} minutes of notebooks, "
             f"{total / 60:.1f} in all.")
    return text


def publish_notebook(executed: Path, folder: Path | None = None, root: Path | None = None) -> Path:
    """Copy an executed notebook to ``<figures>/notebooks/`` without what changes on every identical rerun.

    Removed: papermill's clocks (per cell and for the notebook) and stderr streams (progress bars,
    warnings); the checkout's absolute path (``root``, default the repository) in printed paths
    becomes ``<repo>``, so two clones publish the same bytes. Kept: every cell, its printed
    output, tables and figures.
    """
    nb = json.loads(executed.read_text())
    out = copy.deepcopy(nb)
    _drop_clocks(out.get("metadata", {}).get("papermill", {}))
    for cell in out.get("cells", []):
        _drop_clocks(cell.get("metadata", {}).get("papermill", {}))
        cell.get("metadata", {}).pop("execution", None)
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if not (o.get("output_type") == "stream"
                                                                   and o.get("name") == "stderr")]
    target = (paths.FIGURES if folder is None else folder) / "notebooks" / executed.name
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write_text(target, text.replace(str(paths.ROOT if root is None else root), "<repo>"))
    return target


def _drop_clocks(meta: dict[str, Any]) -> None:
    for key in _CLOCK_KEYS:
        meta.pop(key, None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gmval.runlog", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="add a step's wall time to figures/timings/run_all.csv")
    rec.add_argument("profile")
    rec.add_argument("step")
    rec.add_argument("seconds", type=float)
    rec.add_argument("fresh", type=int, choices=(0, 1), help="1 when the run started without caches")
    rec.add_argument("--executed", type=Path, help="the step's executed notebook, published as well")
    pub = sub.add_parser("publish", help="copy an executed notebook to figures/notebooks/, byte-stable")
    pub.add_argument("executed", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.profile, args.step, args.seconds, bool(args.fresh))
    if args.executed is not None:
        print(publish_notebook(args.executed))


if __name__ == "__main__":
    main()
