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
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from gmval import paths, runlog, verdicts
from gmval.recall import RecallConfig
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


#: Each paper item, the files (stems under the figures folder) that reproduce it, and why
#: ours may differ. Stems that no run has produced yet are listed as missing.
PAPER_ITEMS: list[tuple[str, list[str], str]] = [
    ("Tables 11, 12 (generators)", ["generators_quality", "generator_samples"],
     "DCGAN/β-VAE/diffusion trained here on MNIST and Fashion-MNIST; quality measured, not assumed"),
    ("Fig. 1", ["motivation_tsne"], "Fashion-MNIST T-shirts for CIFAR-10 airplanes; DCGAN for BigGAN"),
    ("Table 6", ["motivation_ttest"], "as Fig. 1; values scale with k and m, the test's direction is the claim"),
    ("Tables 2, 7", ["c1_identical_class"],
     ("EfficientNet-Lite0 for CLIP, effnet-features for LPIPS, Fashion-MNIST for CIFAR-10; `ceiling`: the same "
      "engine on real held-out images")),
    ("Table 9", ["c1_embedding_ablation", "ablation_encoder_rerank"], "offline encoders only (no CLIP weights)"),
    ("Fig. 7", ["c1_generated_set_size"], "plot only in the paper"),
    ("Tables 3, 8", ["c2_identical_attributes"],
     "measured digit attributes (thick, slanted, wide) for CelebA's hat, gender, eyeglasses; chance levels given"),
    ("Fig. 4", ["c2_contributors"], "digits for faces"),
    ("Figs. 5, 9", ["c3_noisy_ranks"],
     "offline quality models (realism, NIQE, BRISQUE) for MANIQA; AUROC, clean-zero and bottom-decile shares added"),
    ("Figs. 3, 8", ["c3_contributions_without_quality", "c3_contributions_with_quality", "c3_quality_distribution"],
     "as Figs. 5, 9"),
    ("Table 4", ["c4_seconds_per_sample", "c4_whole_valuation"], "CPU here, RTX 3080 in the paper"),
    ("Figs. 10, 11", ["c4_scaling"], "CPU; cheaper scaling encoder"),
    ("Fig. 12, App. P", ["c4_pq_recall"],
     "identical-class ratio and recall@K under PQ, IVF-PQ and HNSW against exact search (the paper plots timings)"),
    ("Table 15, Fig. 6, App. N (Naruto, AFHQ, FFHQ)", [],
     "not reproduced: Stable Diffusion, StyleGAN and those datasets cannot be had offline"),
]


#: Results the paper does not have, where they are, and what they measure.
BEYOND_PAPER: list[tuple[str, list[str], str]] = [
    ("Counterfactual validation (LDS, D-TRAK's protocol)", ["cf_lds"],
     "beta-VAE retrained on random half subsets of an MNIST subset; Spearman per generated sample, bootstrap 95 %"),
    ("Retraining without each sample's top-k contributors", ["cf_removal"],
     "loss change of the sample against removing k random images"),
    ("Counterfactual validation of a diffusion model (LDS)", ["cf_lds_diffusion"],
     "class-conditional diffusion model retrained on random half subsets; denoising loss at fixed steps and noise"),
    ("Diffusion model retrained without each sample's top-k contributors", ["cf_removal_diffusion"],
     "denoising-loss change of the sample against removing k random images"),
    ("Engine benchmark (Table 4 at MNIST scale)", ["c4_benchmark_engine"],
     "benchmarks/results/engine.csv: encoder floor, naive Algorithm 1, peak memory"),
    ("Recall scaling to 10^7 vectors", ["c4_benchmark_scaling"],
     "benchmarks/results/scaling*.csv: exact search against IVF-PQ and HNSW, synthetic vectors"),
]


#: Tables whose two sides measure different things, so no difference is averaged, and why.
NOT_COMPARED: dict[str, str] = {
    "c2_identical_attributes": "digit attributes against CelebA attributes",
    "motivation_ttest": "p-values, t-statistics and means mixed; values scale with k and m",
    "c4_seconds_per_sample": "CPU against GPU seconds",
    "c4_whole_valuation": "CPU against GPU seconds",
    "c4_benchmark_engine": "CPU against GPU seconds",
}


def _item_rows(folder: Path, items: list[tuple[str, list[str], str]], heading: str, first: str,
               last: str) -> list[str]:
    lines = [f"## {heading}", "", f"| {first} | ours | {last} |", "|---|---|---|"]
    for item, stems, why in items:
        links = []
        for stem in stems:
            found = [p for ext in ("csv", "png") if (p := folder / f"{stem}.{ext}").exists()]
            links.append(f"[{stem}]({found[0].name})" if found else f"{stem} (missing: not run yet)")
        lines.append(f"| {item} | {', '.join(links) or '-'} | {why} |")
    return lines + [""]


def _cell(text: object) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def claim_lines(folder: Path) -> list[str]:
    """The claim table, the rules behind its verdicts and the quality gate, as Markdown lines."""
    rows = verdicts.claims(folder, paper_numbers("T9"))
    counts = ", ".join(f"{n} {v}" for v, n in verdicts.verdict_counts(rows).items())
    lines = ["## Claims and verdicts", "",
             f"Computed by `gmval.verdicts` from the CSVs below ({counts}); no verdict is typed by hand.", "",
             "| paper item | claim | paper | ours | setting | verdict | evidence |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {_cell(c.item)} | {_cell(c.claim)} | {_cell(c.paper)} | {_cell(c.ours)} | {_cell(c.setting)} | "
              f"**{_cell(c.verdict)}** | {_cell(c.evidence)} |" for c in rows]
    lines += ["", "### Rules", ""]
    items: dict[str, list[str]] = {}
    for c in rows:
        if c.item not in items.setdefault(c.rule, []):
            items[c.rule].append(c.item)
    lines += [f"- **{'; '.join(names)}**: {rule}" for rule, names in items.items()] + [""]
    quality = folder / "generators_quality.csv"
    if quality.exists():
        g = verdicts.gate_table(pd.read_csv(quality))
        blurred = [c for c in g.columns if c.startswith("fd_blur_")]
        cols = [c for c in ("generator", "fd", "fd_real", "fd_ratio", *blurred, "class_accuracy",
                            "class_accuracy_real", "confident_share", "confident_share_real", "class_count_ratio",
                            "class_count_ratio_real", "gate", "gate_reasons") if c in g.columns]
        lines += ["### Generator quality gate", "",
                  f"{verdicts.describe_gate()} (`gmval.verdicts.GATE`).",
                  "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in g[cols].iterrows():
            lines.append("| " + " | ".join(_cell(("-" if np.isnan(v) else f"{v:.3g}") if isinstance(v, float) else v)
                                           for v in r) + " |")
        lines.append("")
    return lines


def verdict_lines(folder: Path, items: list[str]) -> str:
    """The claim rows whose paper item starts with one of ``items``, one sentence each, for a notebook to print."""
    rows = [c for c in verdicts.claims(folder, paper_numbers("T9")) if c.item.startswith(tuple(items))]
    return "\n".join(f"{c.item} ({c.setting}): {c.verdict.upper()}. {c.evidence}." for c in rows)


def findings(folder: Path = paths.FIGURES) -> str:
    """The headline findings, as Markdown bullets computed from the CSVs under ``folder``."""
    rows = verdicts.claims(folder, paper_numbers("T9"))
    counts = ", ".join(f"{n} {v}" for v, n in verdicts.verdict_counts(rows).items())
    lines = [*verdicts.headline(folder), f"Verdicts over the {len(rows)} claim rows of `REPRODUCTION.md`: {counts}."]
    return "\n".join(f"- {line}" for line in lines)


def write_index(out: Path, folder: Path = paths.FIGURES) -> str:
    """Index every claim (with its verdict), table and figure under ``folder`` into ``out``."""
    lines = ["# Reproduction index", "", "## Findings", "", findings(folder), "",
             *claim_lines(folder),
             ("Each table is a CSV with our number (`ours`) beside the paper's (`paper`); `note` says why they "
              "may differ (stand-in dataset, encoder or generator)."), "",
             *_item_rows(folder, PAPER_ITEMS, "Paper items", "paper", "why it may differ"),
             *_item_rows(folder, BEYOND_PAPER, "Beyond the paper", "result", "what it measures"), "## Tables", "",
             "| table | caption | rows | with paper number | mean abs. difference | note |",
             "|---|---|---|---|---|---|"]
    for csv in sorted(folder.glob("*.csv")):
        df = pd.read_csv(csv)
        meta_file = csv.with_suffix(".json")
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        both = df.dropna(subset=["ours", "paper"]) if {"ours", "paper"} <= set(df.columns) else df.iloc[0:0]
        if csv.stem in NOT_COMPARED:
            diff = f"not computed: {NOT_COMPARED[csv.stem]}"
        else:
            diff = f"{(both['ours'] - both['paper']).abs().mean():.2f}" if len(both) else "-"
        lines.append(f"| [{csv.stem}]({csv.name}) | {meta.get('caption', '')} | {len(df)} | {len(both)} | {diff} | "
                     f"{meta.get('note', '')} |")
    figures = sorted(folder.glob("*.png"))
    lines += ["", "## Figures", ""] + [f"- [{p.stem}]({p.name})" for p in figures]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out, text)
    return text


def readme_blocks(folder: Path = paths.FIGURES,
                  benchmarks: Path = paths.ROOT / "benchmarks" / "results") -> dict[str, str]:
    """The README's generated blocks, by name: findings (figures CSVs), speed (benchmark CSVs), generators
    (the weights manifest) and run time (``figures/timings/run_all.csv``)."""
    return {"findings": findings(folder), "speed": speed_sentences(benchmarks), "generators": generator_sentences(),
            "runtime": runlog.runtime_sentences(folder)}


def generator_sentences(manifest: Mapping[str, Mapping] | None = None) -> str:
    """The committed generator weights (:mod:`gmval.models.pretrained`), one line each with their measured quality."""
    from gmval.models import pretrained

    entries = pretrained.manifest() if manifest is None else manifest
    lines = []
    for key, e in sorted(entries.items(), key=lambda kv: kv[1]["params"]["name"]):
        q = e["quality"]
        label = (f"class accuracy {q['class_accuracy']:.3f}" if q.get("class_accuracy") is not None else
                 f"{q['confident_share']:.0%} confidently labelled, class counts {q['class_count_ratio']:.1f}x apart")
        gate = q.get("gate_failures") or "passes the quality gate"
        lines.append(f"- `{e['params']['name']}` ({key}): {e['epochs']} epochs, {e['training_wall_seconds'] / 60:.0f} "
                     f"min of training ({e['hardware']}); FD {q['fd']:.1f}, {q['fd_ratio']:.1f}x the real-image floor, "
                     f"{label}; {gate}.")
    return "\n".join(lines)


def _markers(name: str) -> tuple[str, str]:
    return (f"<!-- gmval:{name} (generated by `python -m gmval.reproduction` from the CSVs; do not edit) -->",
            f"<!-- /gmval:{name} -->")


def render_readme(text: str, blocks: Mapping[str, str]) -> str:
    """``text`` with the content between each block's markers replaced by ``blocks[name]``."""
    for name, body in blocks.items():
        start, end = _markers(name)
        if start not in text or end not in text:
            continue
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{body}\n{end}{tail}" if body else f"{head}{start}\n{end}{tail}"
    return text


def update_readme(readme: Path, folder: Path = paths.FIGURES,
                  benchmarks: Path = paths.ROOT / "benchmarks" / "results") -> None:
    """Regenerate the README's marked blocks (:func:`readme_blocks`) in place."""
    text = readme.read_text()
    new = render_readme(text, readme_blocks(folder, benchmarks))
    if new != text:
        atomic_write_text(readme, new)


def speed_sentences(benchmarks: Path) -> str:
    """The benchmark's headline numbers (engine.csv, scaling*.csv) as one sentence; empty without them."""
    engine = benchmarks / "engine.csv"
    if not engine.exists():
        return ""
    bench = pd.read_csv(engine)
    fast = bench[(bench["path"] == "fast") & bench["per_sample_ms"].notna()]
    largest = fast[fast["n_generated"] == fast["n_generated"].max()].drop_duplicates("variant").set_index("variant")
    naive = bench[bench["path"] == "naive"]["naive_speedup"].dropna()
    cheap = largest.loc[[v for v in ("No-Rerank", "l2", "No-Rerank+brisque", "No-Rerank+realism")
                         if v in largest.index]]
    text = (f"Speed (`benchmarks/results/engine.csv`, {int(largest['n_generated'].iloc[0]):,} generated against "
            f"{int(largest['n_train'].iloc[0]):,} training MNIST digits): "
            f"{cheap['per_sample_ms'].min():.1f}-{cheap['per_sample_ms'].max():.1f} ms per generated sample for "
            f"{', '.join(cheap.index)}, {cheap['ratio_end_to_end_vs_raw'].min():.1f}-"
            f"{cheap['ratio_end_to_end_vs_raw'].max():.1f}x a bare encoder pass")
    deep = largest.loc[[v for v in ("effnet-features", "LPIPS-random") if v in largest.index]]
    if "No-Rerank+niqe" in largest.index:
        text += f", {largest.loc['No-Rerank+niqe', 'per_sample_ms']:.1f} ms with NIQE"
    if len(deep):
        text += (f", {deep['per_sample_ms'].min():.1f}-{deep['per_sample_ms'].max():.1f} ms with a deep-feature or "
                 "LPIPS re-rank (their network's passes come on top)")
    text += (f"; everything but forward passes stays under "
             f"{np.ceil(10 * largest['non_encoder_ms_per_sample'].max()) / 10:.1f} "
             f"ms, and the engine is {naive.min():.0f}-{naive.max():.0f}x faster than a literal reading of "
             "Algorithm 1 on the same machine.")
    hnsw = benchmarks / "scaling_hnsw.csv"
    if hnsw.exists():
        s = pd.read_csv(hnsw)
        flat = s[s["index"] == "flat"].set_index("n")["search_ms_per_query"]
        # the default ef_search's rows; the 10^7 run left the column empty, its variant names it
        default_ef = RecallConfig("hnsw").ef_search
        ef = s[(s["index"] == "hnsw") & s["recall_at_k"].notna() & (s["variant"] == f"hnsw ef {default_ef}")]
        pts = [f"recall@{int(r['k'])} {r['recall_at_k']:.3f} in {r['search_ms_per_query']:.2f} ms per query at "
               f"n = 10^{round(np.log10(r['n']))}" + (f" (exact: {flat[r['n']]:.0f} ms)" if r["n"] in flat.index
                                                          else "")
               for _, r in ef.sort_values("n").tail(2).iterrows()]
        text += f" HNSW (`scaling_hnsw.csv`, ef_search {default_ef}): {'; '.join(pts)}."
    return text


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else paths.FIGURES / "REPRODUCTION.md"
    print(write_index(target, target.parent))
    update_readme(paths.ROOT / "README.md", target.parent)
