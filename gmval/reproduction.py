"""The paper's numbers, and the side-by-side tables and index that compare ours with them.

``paper_numbers.csv`` (shipped in the package) holds every number of the paper's
tables, one per row: table, experiment, dataset, model, method, column, k, value, unit.
Notebooks build comparison tables with :func:`side_by_side` and save them with
:func:`save_table`; ``python -m gmval.reproduction figures/REPRODUCTION.md`` indexes
every saved table and figure.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import pandas as pd

from gmval import paths
from gmval.store import atomic_write_text

#: Columns every comparison table carries, in this order.
SETTING_COLUMNS = ["table", "dataset", "generator", "encoder", "distance", "quality", "k", "profile"]


def paper_numbers(table: str | None = None) -> pd.DataFrame:
    """The paper's numbers, optionally only those of one table ("T2", "T9", "AppP", ...)."""
    with resources.files("gmval").joinpath("paper_numbers.csv").open() as fh:
        df = pd.read_csv(fh)
    return df if table is None else df[df["table"] == table].reset_index(drop=True)


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame, on: list[str], note: str = "") -> pd.DataFrame:
    """Join our measurements (column ``ours``) with the paper's (column ``paper``) on ``on``.

    Rows the paper does not have keep ``paper`` empty and vice versa, so a missing number
    is never invented. ``difference`` is ours - paper where both exist.
    """
    merged = ours.merge(paper.rename(columns={"value": "paper"}), on=on, how="outer")
    merged["difference"] = merged["ours"] - merged["paper"]
    merged["note"] = note
    return merged


def save_table(df: pd.DataFrame, name: str, meta: dict[str, str] | None = None,
               folder: Path = paths.FIGURES) -> Path:
    """Write ``<folder>/<name>.csv`` atomically, with ``<name>.json`` holding its caption and setting."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    atomic_write_text(path, df.to_csv(index=False))
    atomic_write_text(folder / f"{name}.json", json.dumps(meta or {}, indent=1, sort_keys=True))
    return path


def write_index(out: Path, folder: Path = paths.FIGURES) -> str:
    """Index every table (with its distance to the paper) and figure under ``folder`` into ``out``."""
    lines = ["# Reproduction index", "",
             "Each table is a CSV with our number (`ours`) beside the paper's (`paper`); `note` says why they "
             "may differ (stand-in dataset, encoder or generator).", "",
             "| table | caption | rows | with paper number | mean abs. difference | note |", "|---|---|---|---|---|---|"]
    for csv in sorted(folder.glob("*.csv")):
        df = pd.read_csv(csv)
        meta_file = csv.with_suffix(".json")
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        both = df.dropna(subset=["ours", "paper"]) if {"ours", "paper"} <= set(df.columns) else df.iloc[0:0]
        diff = f"{(both['ours'] - both['paper']).abs().mean():.2f}" if len(both) else "-"
        lines.append(f"| [{csv.stem}]({csv.name}) | {meta.get('caption', '')} | {len(df)} | {len(both)} | {diff} | "
                     f"{meta.get('note', '')} |")
    figures = sorted(folder.glob("*.png"))
    lines += ["", "## Figures", ""] + [f"- [{p.stem}]({p.name})" for p in figures]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out, text)
    return text


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else paths.FIGURES / "REPRODUCTION.md"
    print(write_index(target, target.parent))
