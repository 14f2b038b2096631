"""Verdicts on the paper's claims, computed from the result tables by fixed rules.

Each claim of the paper that a notebook tests becomes one or more rows of
``figures/REPRODUCTION.md``: the paper's number, ours with its setting, a verdict and the
sentence of evidence. No verdict is typed by hand: each comes from one rule below, applied to
the CSVs under the figures folder, so a rerun that changes a number changes the verdict.

Verdicts, in the order a rule tries them:

* ``not comparable: generator below the quality gate``: the row values samples of a
  generator that misses :data:`GATE` (the paper assumes well-trained generators, so a
  failure on poor samples says nothing about GMValuator);
* ``not comparable: <reason>``: the measurement is missing, too small to decide, or cannot
  be run offline (``not reproduced``);
* ``supports`` / ``partly supports`` / ``contradicts``: the rule of the claim, with the
  thresholds of :data:`TOL` (each rule's text is printed beside its rows).

The quality gate (issue 19): GAN and diffusion FD within 5x of the real-image floor, β-VAE
within 20x; conditional generators classified as their class at least 0.95 of the time on
MNIST and 0.80 on Fashion-MNIST; unconditional generators' samples labelled confidently
(at least 90 % with classifier max-softmax >= 0.9) with class counts within a factor 2.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SUPPORTS = "supports"
PARTLY = "partly supports"
CONTRADICTS = "contradicts"
BELOW_GATE = "not comparable: generator below the quality gate"
VERDICTS = (SUPPORTS, PARTLY, CONTRADICTS)


def not_comparable(reason: str) -> str:
    """The verdict of a row that cannot be decided, with its reason."""
    return f"not comparable: {reason}"


@dataclass(frozen=True)
class Gate:
    """Thresholds a generator must meet before the rows valuing its samples are judged."""

    fd_ratio: Mapping[str, float]
    class_accuracy: Mapping[str, float]
    confident_softmax: float
    confident_share: float
    class_count_ratio: float
    single_class_share: float


GATE = Gate(fd_ratio={"gan": 5.0, "diffusion": 5.0, "vae": 20.0},
            class_accuracy={"mnist": 0.95, "fashion-mnist": 0.80},
            confident_softmax=0.9, confident_share=0.9, class_count_ratio=2.0, single_class_share=0.9)

def describe_gate(gate: Gate = GATE) -> str:
    """The gate's thresholds as one sentence."""
    fd = ", ".join(f"{kind} {limit:g}x" for kind, limit in gate.fd_ratio.items())
    acc = ", ".join(f"{limit:g} on {ds}" for ds, limit in gate.class_accuracy.items())
    return (f"FD within a factor of the real-image floor ({fd}); conditional class accuracy at least {acc}; "
            f"unconditional samples at least {gate.confident_share:.0%} confident (classifier max-softmax >= "
            f"{gate.confident_softmax:g}) with class counts within a factor {gate.class_count_ratio:g}; a generator "
            f"of one class (the motivation pair) at least {gate.single_class_share:.0%} of the real class images' "
            "share labelled that class, its FD taken to that class's held-out images")


#: Tolerances of the rules (percentage points unless named otherwise).
TOL = {
    "rho_points": 10.0,        # C1: ours within this of the paper's ρ supports
    "chance_points": 10.0,     # C1/C2: this far above chance is a partial support
    "method_points": 5.0,      # a difference between two methods that counts
    "encoder_spread": 5.0,     # Table 9: extra spread across encoders still supporting
    "fig7_mean_points": 5.0,   # Fig. 7: spread of mean ρ over m >= 10
    "p_paper": 0.01,           # Table 6: the paper's significance level
    "p_loose": 0.05,
    "auroc_supports": 0.9,     # C3: AUROC of value, clean against noisy
    "auroc_partly": 0.6,
    "auroc_gain": 0.01,        # Fig. 9: calibration gain that counts
    "speedup_factor": 10.0,    # Table 4: ours within this factor of the paper's speed-up
    "slope_flat": 0.25,        # Figs. 10, 11: log-log slope of time per sample on n
    "slope_partly": 0.75,
    "pq_points": 2.0,          # App. P: identical-class ratio within this of exact search
    "pq_partly_points": 5.0,
    "min_samples": 10,         # removal test: fewer samples decide nothing
}

#: Chance level of the identical-class ratio with ten balanced classes (%).
CLASS_CHANCE = 10.0


@dataclass(frozen=True)
class Claim:
    """One row of the claim table."""

    item: str
    claim: str
    paper: str
    ours: str
    setting: str
    verdict: str
    evidence: str
    rule: str


def _kind(generator: str) -> str:
    return generator.rsplit("-", 1)[-1]


def is_conditional(generator: str) -> bool:
    """Whether a zoo generator draws the class it is asked for (the diffusion models) rather than a label."""
    return _kind(generator) == "diffusion"


def _class_counts(value: object) -> list[int]:
    if isinstance(value, str):
        return [int(c) for c in ast.literal_eval(value)]
    return [int(c) for c in value]  # type: ignore[union-attr]


def class_count_ratio(counts: Iterable[int]) -> float:
    """Largest over smallest predicted class count (inf when a class is never drawn)."""
    c = np.asarray(list(counts), dtype=float)
    return float("inf") if c.min() == 0 else float(c.max() / c.min())


def _fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def gate_table(quality: pd.DataFrame, gate: Gate = GATE) -> pd.DataFrame:
    """``quality`` (notebook 00's ``generators_quality``) with the gate's columns.

    Adds ``fd_ratio`` (FD over the real-image floor), ``class_count_ratio``, ``gate``
    ("pass"/"fail") and ``gate_reasons``. A criterion whose column is missing or empty
    fails: an unmeasured generator is not shown to be well-trained.
    """
    out = quality.copy()
    out["fd_ratio"] = out["fd"] / out["fd_real"]
    out["class_count_ratio"] = [class_count_ratio(_class_counts(h)) for h in out["class_histogram"]]
    verdicts, reasons = [], []
    for _, row in out.iterrows():
        why = gate_failures(row, gate)
        verdicts.append("fail" if why else "pass")
        reasons.append("; ".join(why))
    out["gate"], out["gate_reasons"] = verdicts, reasons
    return out


def gate_failures(row: Mapping[str, object], gate: Gate = GATE) -> list[str]:
    """Why generator ``row`` misses the gate (empty list: it passes)."""
    kind, dataset = _kind(str(row["generator"])), str(row["dataset"])
    why = []
    ratio = float(row["fd"]) / float(row["fd_real"])  # type: ignore[arg-type]
    limit = gate.fd_ratio.get(kind, min(gate.fd_ratio.values()))
    if not ratio <= limit:
        why.append(f"FD {_fmt(ratio)}x the floor (limit {limit:g}x)")
    if not math.isnan(_get(row, "class")):
        acc, real = _get(row, "class_accuracy"), _get(row, "class_accuracy_real")
        need = gate.single_class_share * real
        if not acc >= need:
            why.append(f"class {int(_get(row, 'class'))} share {_fmt(acc, 3)} (needs {_fmt(need, 3)}, "
                       f"{gate.single_class_share:.0%} of the real images' {_fmt(real, 3)})")
    elif is_conditional(str(row["generator"])):
        acc = _get(row, "class_accuracy")
        need = gate.class_accuracy.get(dataset, max(gate.class_accuracy.values()))
        if not acc >= need:
            why.append(f"class accuracy {_fmt(acc, 3)} (needs {need:g})")
    else:
        share = _get(row, "confident_share")
        if not share >= gate.confident_share:
            why.append(f"confident share {_fmt(share, 3)} (needs {gate.confident_share:g})"
                       if not math.isnan(share) else "confident share not measured")
        counts = class_count_ratio(_class_counts(row["class_histogram"]))
        if not counts <= gate.class_count_ratio:
            why.append(f"class counts {_fmt(counts)}x apart (limit {gate.class_count_ratio:g}x)")
    return why


def _get(row: Mapping[str, object], key: str) -> float:
    value = row.get(key, float("nan")) if hasattr(row, "get") else float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


class Tables:
    """The result CSVs of a figures folder, read on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, pd.DataFrame | None] = {}

    def get(self, stem: str) -> pd.DataFrame | None:
        if stem not in self._cache:
            path = self.folder / f"{stem}.csv"
            self._cache[stem] = pd.read_csv(path) if path.exists() else None
        return self._cache[stem]

    def gates(self) -> dict[str, list[str]]:
        """Each measured generator's reasons for failing the gate (empty: passes)."""
        q = self.get("generators_quality")
        if q is None:
            return {}
        return {str(r["generator"]): gate_failures(r) for _, r in q.iterrows()}


def _missing(item: str, claim: str, stem: str, rule: str) -> Claim:
    return Claim(item, claim, "-", "-", "-", not_comparable(f"{stem}.csv missing (not run yet)"), "-", rule)


def _gated(gates: Mapping[str, list[str]], generator: str) -> tuple[bool, str]:
    """Whether rows on ``generator`` must be withheld, and the evidence sentence if so."""
    if generator not in gates:
        return True, f"{generator}: sample quality not measured (generators_quality.csv)"
    why = gates[generator]
    return bool(why), f"{generator} misses the gate: {'; '.join(why)}" if why else ""


def _judged(gates: Mapping[str, list[str]], generator: str, verdict: str, evidence: str) -> tuple[str, str]:
    """``(verdict, evidence)`` as the rule decided, or the below-gate verdict with the gate's reason first."""
    blocked, why = _gated(gates, generator)
    return (BELOW_GATE, f"{why}. {evidence}") if blocked else (verdict, evidence)


# --- the rules -------------------------------------------------------------------------------

RULE_C1 = (f"l2 re-rank, k = 30: supports if ours >= paper - {TOL['rho_points']:g} points; partly if ours >= "
           f"chance ({CLASS_CHANCE:g} %) + {TOL['chance_points']:g}; else contradicts")


def c1_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Tables 2, 7: top-k contributors share the generated sample's class."""
    item, claim = "Tables 2, 7 (C1)", "contributors share the class of the generated sample"
    df = t.get("c1_identical_class")
    if df is None:
        return [_missing(item, claim, "c1_identical_class", RULE_C1)]
    rows = df[(df["distance"] == "l2") & (df["k"] == 30) & df["generator"].notna()
              & ~df["generator"].astype(str).str.endswith("-real")]
    out = []
    for _, r in rows.iterrows():
        gen, ours, paper = str(r["generator"]), float(r["ours"]), float(r["paper"])
        ceiling = _get(r, "ceiling")
        confident = _get(r, "ours_confident")
        extra = []
        if not math.isnan(ceiling):
            extra.append(f"the same engine on real held-out images: {_fmt(ceiling)} % "
                         f"({_fmt(ceiling - ours)} points above ours)")
        if not math.isnan(confident):
            extra.append(f"on the confidently labelled samples: {_fmt(confident)} %")
        evidence = f"ρ = {_fmt(ours)} % against the paper's {_fmt(paper)} % ({r['paper_dataset']} {r['model']})"
        evidence += "; " + "; ".join(extra) if extra else ""
        blocked, why = _gated(gates, gen)
        if blocked:
            verdict, evidence = BELOW_GATE, f"{why}. {evidence}"
        elif ours >= paper - TOL["rho_points"]:
            verdict = SUPPORTS
        elif ours >= CLASS_CHANCE + TOL["chance_points"]:
            verdict = PARTLY
        else:
            verdict = CONTRADICTS
        out.append(Claim(item, claim, f"{_fmt(paper)} %", f"{_fmt(ours)} %",
                         f"{gen}, {r['encoder']} recall, l2 re-rank, k = 30", verdict, evidence, RULE_C1))
    return out


RULE_TRACIN = (f"ρ at k = 30, l2 re-rank against VAE-TracIn on the same samples: supports if GMValuator is "
               f"higher by >= {TOL['method_points']:g} points; contradicts if lower by as much; else partly")


def tracin_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Table 2: GMValuator's contributors share the class more often than VAE-TracIn's."""
    item, claim = "Table 2 (C1, VAE-TracIn)", "GMValuator finds same-class contributors more often than VAE-TracIn"
    df = t.get("c1_identical_class")
    if df is None:
        return [_missing(item, claim, "c1_identical_class", RULE_TRACIN)]
    at30 = df[df["k"] == 30]
    out = []
    for gen in at30.loc[at30["distance"] == "vae-tracin", "generator"].dropna().unique():
        mine = at30[(at30["generator"] == gen) & (at30["distance"] == "l2")]
        tr = at30[(at30["generator"] == gen) & (at30["distance"] == "vae-tracin")]
        if mine.empty:
            continue
        g, b = float(mine["ours"].iloc[0]), float(tr["ours"].iloc[0])
        pg, pb = float(mine["paper"].iloc[0]), float(tr["paper"].iloc[0])
        diff = g - b
        evidence = (f"GMValuator {_fmt(g)} % against VAE-TracIn {_fmt(b)} % ({_fmt(diff):s} points); "
                    f"paper {_fmt(pg)} % against {_fmt(pb)} %")
        verdict = (SUPPORTS if diff >= TOL["method_points"] else
                   CONTRADICTS if diff <= -TOL["method_points"] else PARTLY)
        verdict, evidence = _judged(gates, str(gen), verdict, evidence)
        out.append(Claim(item, claim, f"{_fmt(pg)} vs {_fmt(pb)} %", f"{_fmt(g)} vs {_fmt(b)} %",
                         f"{gen}, k = 30, VAE-TracIn {tr['reductions'].iloc[0] if 'reductions' in tr else ''}".strip(),
                         verdict, evidence, RULE_TRACIN))
    return out


RULE_ENGINE = (f"real held-out digits as generated images (no generator involved), k = 30: supports if ours >= "
               f"paper - {TOL['rho_points']:g} points; partly if >= chance + {TOL['chance_points']:g}; "
               "else contradicts")


def engine_claims(t: Tables) -> list[Claim]:
    """The C1 engine on real held-out digits: the ceiling a perfect generator would give."""
    item, claim = "Table 9-like (C1 engine)", "the engine finds same-class contributors of real held-out digits"
    df = t.get("ablation_encoder_rerank")
    if df is None:
        return [_missing(item, claim, "ablation_encoder_rerank", RULE_ENGINE)]
    rows = df[(df["k"] == 30) & df["distance"].isin(["l2", "effnet-features"]) & df["paper"].notna()]
    out = []
    for _, r in rows.iterrows():
        ours, paper = float(r["ours"]), float(r["paper"])
        verdict = (SUPPORTS if ours >= paper - TOL["rho_points"] else
                   PARTLY if ours >= CLASS_CHANCE + TOL["chance_points"] else CONTRADICTS)
        out.append(Claim(item, claim, f"{_fmt(paper)} % ({r['method']}, β-VAE samples)", f"{_fmt(ours)} %",
                         f"{r['encoder']} {_fmt(float(r['resolution']), 0)} px recall, {r['distance']} re-rank, "
                         "MNIST test digits, k = 30", verdict,
                         f"ρ = {_fmt(ours)} % on real digits against the paper's {_fmt(paper)} % on its β-VAE's "
                         "samples", RULE_ENGINE))
    return out


RULE_T9 = (f"with re-ranking, spread of ρ (k = 30) across recall encoders: supports if <= the paper's spread + "
           f"{TOL['encoder_spread']:g} points; partly if <= 3x that; else contradicts")


def table9_claims(t: Tables, gates: Mapping[str, list[str]], paper_t9: pd.DataFrame) -> list[Claim]:
    """Table 9: with re-ranking the recall encoder hardly matters."""
    item, claim = "Table 9", "with re-ranking, the recall encoder hardly changes ρ"
    df = t.get("c1_embedding_ablation")
    if df is None:
        return [_missing(item, claim, "c1_embedding_ablation", RULE_T9)]
    out = []
    for method in ("l2", "LPIPS"):
        ours = df[(df["method"] == method) & df["ours"].notna()]
        paper = paper_t9[paper_t9["method"] == method]["value"]
        if ours.empty or paper.empty:
            continue
        spread, paper_spread = float(ours["ours"].max() - ours["ours"].min()), float(paper.max() - paper.min())
        gen = str(ours["generator"].iloc[0])
        evidence = (f"ρ from {_fmt(ours['ours'].min())} to {_fmt(ours['ours'].max())} % over "
                    f"{len(ours)} encoders (spread {_fmt(spread)} points); paper spread {_fmt(paper_spread)} "
                    "points over CLIP, AlexNet, DenseNet")
        limit = paper_spread + TOL["encoder_spread"]
        verdict = SUPPORTS if spread <= limit else PARTLY if spread <= 3 * limit else CONTRADICTS
        verdict, evidence = _judged(gates, gen, verdict, evidence)
        method_name = "effnet-features (LPIPS stand-in)" if method == "LPIPS" else method
        out.append(Claim(item, claim, f"spread {_fmt(paper_spread)} points", f"spread {_fmt(spread)} points",
                         f"{gen}, {method_name} re-rank, encoders {', '.join(ours['encoder'].astype(str))}",
                         verdict, evidence, RULE_T9))
    return out


RULE_FIG7 = (f"No-Rerank, k = 30: the mean ρ over m >= 10 varies by <= {TOL['fig7_mean_points']:g} points and "
             "the spread over draws is smaller at the largest m than at the smallest: supports if both hold, "
             "partly if one, else contradicts")


def fig7_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Fig. 7: ρ does not depend on the number m of generated samples, and gets more stable with m."""
    item, claim = "Fig. 7", "ρ does not change with the number m of generated samples, and stabilises as m grows"
    df = t.get("c1_generated_set_size")
    if df is None:
        return [_missing(item, claim, "c1_generated_set_size", RULE_FIG7)]
    out = []
    for gen, grp in df.groupby("generator", sort=False):
        grp = grp.sort_values("m")
        big = grp[grp["m"] >= 10]["mean"]
        spread = float(big.max() - big.min()) if len(big) else float("nan")
        stable = float(grp["std"].iloc[-1]) < float(grp["std"].iloc[0])
        flat = spread <= TOL["fig7_mean_points"]
        evidence = (f"mean ρ {_fmt(grp['mean'].min())}-{_fmt(grp['mean'].max())} % over m = "
                    f"{', '.join(str(int(m)) for m in grp['m'])}; spread {_fmt(spread)} points over m >= 10; "
                    f"std {_fmt(float(grp['std'].iloc[0]))} at m = {int(grp['m'].iloc[0])}, "
                    f"{_fmt(float(grp['std'].iloc[-1]))} at m = {int(grp['m'].iloc[-1])}")
        verdict = SUPPORTS if flat and stable else PARTLY if flat or stable else CONTRADICTS
        verdict, evidence = _judged(gates, str(gen), verdict, evidence)
        out.append(Claim(item, claim, "plot only", f"spread {_fmt(spread)} points", f"{gen}, class "
                         f"{int(grp['class'].iloc[0])}, No-Rerank, k = 30", verdict, evidence, RULE_FIG7))
    return out


RULE_T6 = (f"one-sided Welch t-test, trained half X_v2 against held-out half X_v1: supports if t > 0 and "
           f"p < {TOL['p_paper']:g} (the paper's level); partly if t > 0 and p < {TOL['p_loose']:g}; "
           "else contradicts")


def table6_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Table 6 (motivation): the trained half's values are significantly higher."""
    item, claim = "Table 6, Fig. 1", "the half a generator was trained on gets higher values than the unseen half"
    df = t.get("motivation_ttest")
    if df is None:
        return [_missing(item, claim, "motivation_ttest", RULE_T6)]
    out = []
    for gen, grp in df.groupby("generator", sort=False):
        by = grp.set_index("column")
        p, tstat = float(by.loc["p_value", "ours"]), float(by.loc["t_statistic", "ours"])
        pp = float(by.loc["p_value", "paper"])
        share = float(by.loc["trained_share", "ours"]) if "trained_share" in by.index else float("nan")
        rejected = "rejects" if tstat > 0 and p < TOL["p_paper"] else "does not reject"
        evidence = (f"t = {tstat:.2f}, p = {p:.3g}: the test {rejected} H0 at the paper's level {TOL['p_paper']:g} "
                    f"(paper: p = {pp:.3g} on {by['model'].iloc[0]}); "
                    f"share of top-k contributors from the trained half {_fmt(share, 3)} (0.5 = no preference)")
        verdict = (SUPPORTS if tstat > 0 and p < TOL["p_paper"] else
                   PARTLY if tstat > 0 and p < TOL["p_loose"] else CONTRADICTS)
        verdict, evidence = _judged(gates, str(gen), verdict, evidence)
        out.append(Claim(item, claim, f"p = {pp:.3g}", f"p = {p:.3g}", f"{gen}, {by['encoder'].iloc[0]} "
                         f"No-Rerank, k = {int(by['k'].iloc[0])}, {int(by['n_generated'].iloc[0])} samples",
                         verdict, evidence, RULE_T6))
    return out


RULE_C2 = (f"stand-in digit attributes, effnet-features re-rank, smallest k: supports if every single attribute's "
           f"ratio exceeds its same-class chance by >= {TOL['chance_points']:g} points; partly if every one "
           "exceeds it; else contradicts")


def c2_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Tables 3, 8: contributors share the generated sample's attributes."""
    item, claim = "Tables 3, 8 (C2)", "contributors share the attributes of the generated sample"
    df = t.get("c2_identical_attributes")
    if df is None:
        return [_missing(item, claim, "c2_identical_attributes", RULE_C2)]
    single = df[df["generator"].notna() & ~df["attribute"].astype(str).str.contains("&|\\+", regex=True)]
    dist = "effnet-features" if (single["distance"] == "effnet-features").any() else str(single["distance"].iloc[-1])
    out = []
    for gen, grp in single[single["distance"] == dist].groupby("generator", sort=False):
        grp = grp[grp["k"] == grp["k"].min()]
        margin = grp["ours"] - grp["chance_same_class"]
        evidence = "; ".join(f"{a}: {_fmt(o)} % against same-class chance {_fmt(c)} %" for a, o, c in
                             zip(grp["attribute"], grp["ours"], grp["chance_same_class"], strict=True))
        verdict = (SUPPORTS if (margin >= TOL["chance_points"]).all() else
                   PARTLY if (margin > 0).all() else CONTRADICTS)
        verdict, evidence = _judged(gates, str(gen), verdict, evidence)
        out.append(Claim(item, claim, "CelebA attributes (not comparable numbers)",
                         f"{_fmt(margin.min())} to {_fmt(margin.max())} points above chance",
                         f"{gen}, {dist} re-rank, k = {int(grp['k'].iloc[0])}, measured digit attributes",
                         verdict, evidence, RULE_C2))
    return out


RULE_C3 = (f"No-Rerank without calibration: AUROC of value (clean above noisy, ties count half): supports if >= "
           f"{TOL['auroc_supports']:g}; partly if >= {TOL['auroc_partly']:g}; else contradicts")
RULE_FIG9 = ("over the samples with the poor ones (where the table has them): calibration can act only on a noisy "
             "image that is some sample's contributor: not comparable if none is; else supports if a quality model "
             f"raises the AUROC by >= {TOL['auroc_gain']:g}, contradicts if none raises it, else partly")


def _samples(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """The rows of ``c3_noisy_ranks`` valued over ``which`` samples (all rows for a table without that column)."""
    return df if "samples" not in df.columns else df[df["samples"] == which]


def c3_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Figs. 5, 9: noisy training images get the lowest values; calibration pushes them lower."""
    item, claim = "Fig. 5 (C3)", "noisy training images get the lowest values"
    table = t.get("c3_noisy_ranks")
    if table is None:
        return [_missing(item, claim, "c3_noisy_ranks", RULE_C3)]
    df, with_poor = _samples(table, "generated"), _samples(table, "generated + poor")
    gen = str(df["generator"].iloc[0])
    blocked, why = _gated(gates, gen)
    plain = df[(df["distance"] == "none") & (df["quality"] == "none")].iloc[0]
    setting = f"{gen}, {plain['encoder']}, k = {int(plain['k'])}"
    claim9 = "quality calibration lowers the values of the noisy images further"
    if "auroc" not in df.columns:
        base = f"noisy images' mean rank {_fmt(float(plain['ours']))} % of the training set (100 = lowest)"
        missing = not_comparable("AUROC not measured (rerun notebook 04)")
        ev9 = f"noisy images that are some sample's contributor: {int(df['noisy_with_value'].max())}"
        return [Claim(item, claim, "plot only", f"mean rank {_fmt(float(plain['ours']))} %", setting,
                      BELOW_GATE if blocked else missing, f"{why}. {base}" if blocked else base, RULE_C3),
                Claim("Fig. 9 (C3)", claim9, "plot only", "-", setting, BELOW_GATE if blocked else missing,
                      f"{why}. {ev9}" if blocked else ev9, RULE_FIG9)]
    auroc = float(plain["auroc"])
    evidence = (f"AUROC {auroc:.3f} (all variants {df['auroc'].min():.3f}-{df['auroc'].max():.3f}); clean images "
                f"with value 0: {_fmt(100 * float(plain['clean_zero_share']))} %; noisy images in the bottom "
                f"decile: {_fmt(100 * float(plain['noisy_bottom_decile']))} %; noisy images that are some "
                f"sample's contributor: {int(plain['noisy_with_value'])}")
    if blocked:
        verdict, evidence = BELOW_GATE, f"{why}. {evidence}"
    else:
        verdict = (SUPPORTS if auroc >= TOL["auroc_supports"] else
                   PARTLY if auroc >= TOL["auroc_partly"] else CONTRADICTS)
    out = [Claim(item, claim, "plot only", f"AUROC {auroc:.3f}", setting, verdict, evidence, RULE_C3)]
    gains = []
    for dist, grp in with_poor.groupby("distance", sort=False):
        base_row = grp[grp["quality"] == "none"]
        if base_row.empty:
            continue
        gains += [(dist, q, float(a) - float(base_row["auroc"].iloc[0]))
                  for q, a in zip(grp["quality"], grp["auroc"], strict=True) if q != "none"]
    best = max(gains, key=lambda g: g[2]) if gains else None
    gain_text = f"largest AUROC gain {best[2]:+.3f} ({best[1]} on {best[0]})" if best else "no calibrated variant"
    if blocked:
        verdict9, ev9 = BELOW_GATE, f"{why}. {gain_text}"
    elif int(with_poor["noisy_with_value"].max()) == 0:
        verdict9, ev9 = not_comparable("no noisy image is any sample's contributor"), gain_text
    elif best is None:
        verdict9, ev9 = not_comparable("no calibrated variant run"), gain_text
    else:
        verdict9 = (SUPPORTS if best[2] >= TOL["auroc_gain"] else CONTRADICTS if best[2] <= 0 else PARTLY)
        ev9 = gain_text
    out.append(Claim("Fig. 9 (C3)", claim9, "plot only", gain_text.split(" (")[0], setting, verdict9, ev9,
                     RULE_FIG9))
    return out


RULE_IF4GAN = (f"mean rank (% of the images IF4GAN scored, 100 = lowest) of the noisy images: supports if "
               f"GMValuator's is higher than IF4GAN's by >= {TOL['method_points']:g} points; contradicts if "
               "lower by as much; else partly")


def if4gan_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """Fig. 5: GMValuator ranks the noisy images lower than IF4GAN does."""
    item, claim = "Fig. 5 (C3, IF4GAN)", "GMValuator ranks the noisy images lower than IF4GAN"
    df = t.get("c3_if4gan_vs_gmvaluator")
    if df is None:
        return [_missing(item, claim, "c3_if4gan_vs_gmvaluator", RULE_IF4GAN)]
    by = df.set_index("method")["ours"]
    if4 = float(by.get("IF4GAN", float("nan")))
    mine = by.drop("IF4GAN", errors="ignore")
    best = float(mine.max())
    diff = best - if4
    gen = str(df["generator"].iloc[0])
    evidence = (f"noisy images' mean rank: IF4GAN {_fmt(if4)} %, GMValuator {_fmt(float(mine.min()))}-"
                f"{_fmt(best)} % over {len(mine)} variants; {int(df['noisy_scored'].iloc[0])} noisy images among "
                f"{int(df['scored_images'].iloc[0])} scored")
    blocked, why = _gated(gates, gen)
    if blocked:
        verdict, evidence = BELOW_GATE, f"{why}. {evidence}"
    elif math.isnan(if4):
        verdict = not_comparable("IF4GAN not run")
    else:
        verdict = (SUPPORTS if diff >= TOL["method_points"] else
                   CONTRADICTS if diff <= -TOL["method_points"] else PARTLY)
    return [Claim(item, claim, "plot only", f"{_fmt(best)} vs {_fmt(if4)} %",
                  f"{gen}, {int(df['traced_steps'].iloc[0])} traced IF4GAN steps", verdict, evidence, RULE_IF4GAN)]


RULE_SPEED = (f"speed-up of GMValuator over the baseline, both timed on one machine: supports if > 1 and within "
              f"{TOL['speedup_factor']:g}x of the paper's speed-up (or above it); partly if > 1; else contradicts "
              "(absolute CPU and GPU seconds are not compared)")


def _speed_verdict(ours: float, paper: float) -> str:
    if not ours > 1:
        return CONTRADICTS
    return SUPPORTS if ours >= paper / TOL["speedup_factor"] else PARTLY


def speed_claims(t: Tables) -> list[Claim]:
    """Table 4: GMValuator is much faster than VAE-TracIn and IF4GAN. Sample quality does not enter."""
    item, claim = "Table 4 (C4)", "GMValuator is much faster than the model-specific baselines"
    out = []
    per = t.get("c4_seconds_per_sample")
    if per is None:
        out.append(_missing(item, claim, "c4_seconds_per_sample", RULE_SPEED))
    else:
        base = per[(per["quality"] == "none") & per["ours"].notna()]
        for gen, grp in base.groupby("generator", sort=False):
            by = grp.set_index("distance")
            if "vae-tracin" not in by.index or "l2" not in by.index:
                continue
            ours = float(by.loc["vae-tracin", "ours"]) / float(by.loc["l2", "ours"])
            paper = float(by.loc["vae-tracin", "paper"]) / float(by.loc["l2", "paper"])
            out.append(Claim(item, claim + " (VAE-TracIn)", f"{paper:.0f}x", f"{ours:.0f}x",
                             f"{gen}, seconds per generated sample, l2 re-rank against VAE-TracIn "
                             f"({by.loc['vae-tracin', 'reductions']})", _speed_verdict(ours, paper),
                             f"VAE-TracIn {by.loc['vae-tracin', 'ours']:.3g} s, l2 {by.loc['l2', 'ours']:.3g} s per "
                             f"sample here; paper {by.loc['vae-tracin', 'paper']:.3g} s and "
                             f"{by.loc['l2', 'paper']:.3g} s on an RTX 3080", RULE_SPEED))
    whole = t.get("c4_whole_valuation")
    if whole is None:
        out.append(_missing(item, claim, "c4_whole_valuation", RULE_SPEED))
    else:
        by = whole.set_index("method")
        if {"IF4GAN", "No-Rerank"} <= set(by.index):
            if4 = float(by.loc["IF4GAN", "full_epoch_s"])
            ours = if4 / float(by.loc["No-Rerank", "ours"])
            paper = float(by.loc["IF4GAN", "paper"]) / float(by.loc["No-Rerank", "paper"])
            out.append(Claim(item, claim + " (IF4GAN)", f"{paper:.1f}x", f"{ours:.1f}x",
                             f"whole valuation of noisy MNIST, No-Rerank against IF4GAN scaled to one epoch "
                             f"({int(by.loc['IF4GAN', 'traced_steps'])} steps traced)", _speed_verdict(ours, paper),
                             f"IF4GAN {if4:.0f} s per epoch, GMValuator {by.loc['No-Rerank', 'ours']:.1f} s here; "
                             f"paper {by.loc['IF4GAN', 'paper']:.0f} s and {by.loc['No-Rerank', 'paper']:.0f} s",
                             RULE_SPEED))
    return out


RULE_SCALING = (f"log-log slope of seconds per generated sample on the training-set size: supports if <= "
                f"{TOL['slope_flat']:g} for every distance (nearly independent); partly if <= "
                f"{TOL['slope_partly']:g}; else contradicts")


def scaling_claims(t: Tables) -> list[Claim]:
    """Figs. 10, 11: time per generated sample is nearly independent of the training-set size."""
    item, claim = "Figs. 10, 11", "time per generated sample is nearly independent of the training-set size"
    df = t.get("c4_scaling")
    if df is None:
        return [_missing(item, claim, "c4_scaling", RULE_SCALING)]
    slopes = {d: float(np.polyfit(np.log(g["n_train"]), np.log(g["per_sample_s"]), 1)[0])
              for d, g in df.groupby("distance", sort=False) if g["n_train"].nunique() > 1}
    if not slopes:
        return [Claim(item, claim, "plot only", "-", "-", not_comparable("one training-set size only"), "-",
                      RULE_SCALING)]
    worst = max(slopes.values())
    verdict = SUPPORTS if worst <= TOL["slope_flat"] else PARTLY if worst <= TOL["slope_partly"] else CONTRADICTS
    sizes = sorted(df["n_train"].unique())
    return [Claim(item, claim, "plot only", f"slope <= {worst:.2f}",
                  f"{df['encoder'].iloc[0]}, n = {int(sizes[0])}-{int(sizes[-1])}", verdict,
                  "; ".join(f"{d}: slope {s:.2f}" for d, s in slopes.items()), RULE_SCALING)]


RULE_PQ = (f"identical-class ratio with each approximate index against exact search, every K: supports if within "
           f"{TOL['pq_points']:g} points and searching faster; partly if within {TOL['pq_partly_points']:g} "
           "points; else contradicts")


def pq_claims(t: Tables, gates: Mapping[str, list[str]]) -> list[Claim]:
    """App. P / Fig. 12: product-quantised recall gives the same results as exact search, faster."""
    item, claim = "Fig. 12, App. P", "approximate recall gives the same results as exact search, faster"
    df = t.get("c4_pq_recall")
    if df is None:
        return [_missing(item, claim, "c4_pq_recall", RULE_PQ)]
    recall = f"recall@K {df['recall_at_K'].min():.3f}-{df['recall_at_K'].max():.3f}"
    if "identical_class" not in df.columns:
        return [Claim(item, claim, "0.25 s vs 13.75 s per sample", recall, f"{df['encoder'].iloc[0]}",
                      not_comparable("identical-class ratio under approximate recall not measured (rerun "
                                     "notebook 05)"), recall, RULE_PQ)]
    gen = str(df["generator"].iloc[0]) if "generator" in df.columns else ""
    gap = (df["exact_identical_class"] - df["identical_class"]).abs()
    faster = bool((df["search_ms_per_query"] < df["exact_ms_per_query"]).all())
    worst = float(gap.max())
    per_index = "; ".join(f"{c}: {100 * g['identical_class'].min():.1f}-{100 * g['identical_class'].max():.1f} %"
                          for c, g in df.groupby("config", sort=False))
    evidence = (f"exact search {100 * df['exact_identical_class'].min():.1f}-"
                f"{100 * df['exact_identical_class'].max():.1f} %; {per_index}; largest gap {100 * worst:.1f} points; "
                f"{recall}; every index faster than exact search: {'yes' if faster else 'no'}")
    blocked, why = _gated(gates, gen) if gen else (False, "")
    if blocked:
        verdict, evidence = BELOW_GATE, f"{why}. {evidence}"
    else:
        verdict = (SUPPORTS if 100 * worst <= TOL["pq_points"] and faster else
                   PARTLY if 100 * worst <= TOL["pq_partly_points"] else CONTRADICTS)
    return [Claim(item, claim, "similar to exact kNN (plot)", f"gap <= {100 * worst:.1f} points",
                  f"{gen}, {df['encoder'].iloc[0]}, l2 re-rank, K = {int(df['K'].min())}-{int(df['K'].max())}",
                  verdict, evidence, RULE_PQ)]


def chance_label(low: float, high: float) -> str:
    """Where a 95 % interval of an LDS lies relative to 0 (chance)."""
    return "above chance" if low > 0 else "below chance" if high < 0 else "at chance"


RULE_LDS = ("95 % bootstrap interval of the LDS: above chance if it excludes 0 from above; supports if every "
            "GMValuator variant is above chance, partly if some are, else contradicts")


def lds_claims(t: Tables) -> list[Claim]:
    """Counterfactual validation (not in the paper): values predict retraining on subsets."""
    out = []
    for stem, model in (("cf_lds", "β-VAE"), ("cf_lds_diffusion", "class-conditional diffusion")):
        item = f"LDS, {model} (beyond the paper)"
        claim = "a training image's value predicts how retraining without it changes the model"
        df = t.get(stem)
        if df is None:
            out.append(_missing(item, claim, stem, RULE_LDS))
            continue
        gmv = df[df["method"].str.startswith("GMValuator")]
        above = [chance_label(lo, hi) == "above chance" for lo, hi in zip(gmv["low"], gmv["high"], strict=True)]
        verdict = SUPPORTS if all(above) else PARTLY if any(above) else CONTRADICTS
        others = df[~df["method"].str.startswith("GMValuator") & (df["method"] != "random scores")]
        beat = [f"{m} {v:.2f} [{lo:.2f}, {hi:.2f}]" for m, v, lo, hi in
                zip(others["method"], others["lds"], others["low"], others["high"], strict=True) if lo > 0]
        evidence = (f"GMValuator LDS {gmv['lds'].min():.2f} to {gmv['lds'].max():.2f} over {len(gmv)} variants, "
                    f"{sum(above)} above chance; baselines above chance: {', '.join(beat) or 'none'}")
        out.append(Claim(item, claim, "not in the paper", f"{gmv['lds'].min():.2f} to {gmv['lds'].max():.2f}",
                         f"{int(df['n_subsets'].iloc[0])} subsets of {int(df['n_train'].iloc[0])} MNIST digits, "
                         f"{int(df['n_generated'].iloc[0])} samples, {int(df['train_seeds'].iloc[0])} seed(s)",
                         verdict, evidence, RULE_LDS))
    return out


RULE_REMOVAL = (f"not comparable below {TOL['min_samples']} samples; else supports if GMValuator's top-k removal "
                "raises the sample's loss more than random removal, contradicts otherwise")


def removal_claims(t: Tables) -> list[Claim]:
    """Removal of a sample's top-k contributors (not in the paper)."""
    out = []
    for stem, model in (("cf_removal", "β-VAE"), ("cf_removal_diffusion", "class-conditional diffusion")):
        item, claim = f"Top-k removal, {model} (beyond the paper)", "removing a sample's contributors hurts it"
        df = t.get(stem)
        if df is None:
            out.append(_missing(item, claim, stem, RULE_REMOVAL))
            continue
        gmv = df[df["method"].str.startswith("GMValuator")]
        rnd = df[df["method"] == "random"]
        if gmv.empty or rnd.empty:
            continue
        n = int(df["n_samples"].iloc[0])
        g, r = float(gmv["ours"].iloc[0]), float(rnd["ours"].iloc[0])
        verdict = (not_comparable(f"only {n} sample{'s' if n != 1 else ''}") if n < TOL["min_samples"] else
                   SUPPORTS if g > r else CONTRADICTS)
        out.append(Claim(item, claim, "not in the paper", f"{g:.3g} vs random {r:.3g}",
                         f"k = {int(gmv['k'].iloc[0])}, {n} sample{'s' if n != 1 else ''}", verdict,
                         f"mean loss change after removing the top-k: GMValuator {g:.3g}, random {r:.3g}",
                         RULE_REMOVAL))
    return out


#: Paper items that cannot be run offline, and why.
NOT_REPRODUCED: list[tuple[str, str, str]] = [
    ("Table 2 (ImageNet column)", "C1 on a Masked Diffusion Transformer trained on ImageNet",
     "ImageNet and the MDT checkpoint cannot be had offline"),
    ("Tables 2, 7 (DreamSim rows)", "C1 with DreamSim re-ranking", "DreamSim weights come from a hub"),
    ("Tables 2, 7, 9 (CLIP, LPIPS)", "CLIP recall and LPIPS re-ranking",
     "hub weights; EfficientNet-Lite0 and effnet-features stand in, and rows say so"),
    ("Tables 3, 8 (CelebA)", "C2 on CelebA attributes with a Diffusion-StyleGAN",
     "CelebA and the generator are not offline; measured digit attributes stand in"),
    ("Table 4 (DreamSim, CIFAR-10 rows)", "seconds per sample with DreamSim and on CIFAR-10",
     "DreamSim weights from a hub; Fashion-MNIST stands in for CIFAR-10"),
    ("Table 15, Fig. 6, App. N", "Naruto (Stable Diffusion LoRA), AFHQ and FFHQ (StyleGAN)",
     "those models and datasets cannot be had offline"),
]

RULE_NOT_REPRODUCED = "listed, not run: the reason says what is missing offline"


NOT_REPRODUCED_VERDICT = not_comparable("not reproduced offline")


def not_reproduced_claims() -> list[Claim]:
    return [Claim(item, claim, "see paper", "-", "-", NOT_REPRODUCED_VERDICT, why,
                  RULE_NOT_REPRODUCED) for item, claim, why in NOT_REPRODUCED]


def claims(folder: Path, paper_t9: pd.DataFrame) -> list[Claim]:
    """Every claim row, from the CSVs under ``folder``."""
    t = Tables(folder)
    gates = t.gates()
    groups: list[Callable[[], list[Claim]]] = [
        lambda: lds_claims(t), lambda: removal_claims(t), lambda: table6_claims(t, gates),
        lambda: c1_claims(t, gates), lambda: tracin_claims(t, gates), lambda: engine_claims(t),
        lambda: table9_claims(t, gates, paper_t9), lambda: fig7_claims(t, gates), lambda: c2_claims(t, gates),
        lambda: c3_claims(t, gates), lambda: if4gan_claims(t, gates), lambda: speed_claims(t),
        lambda: scaling_claims(t), lambda: pq_claims(t, gates), not_reproduced_claims]
    return [c for group in groups for c in group()]


def claims_frame(rows: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.__dict__ for c in rows])


def headline(folder: Path) -> list[str]:
    """The findings a reader should see first, as sentences computed from the CSVs."""
    t = Tables(folder)
    lines = []
    lds = {model: t.get(stem) for stem, model in (("cf_lds", "β-VAE"), ("cf_lds_diffusion", "diffusion model"))}
    parts: list[str] = []
    beats: list[str] = []
    predictive: list[bool] = []
    for model, df in lds.items():
        if df is None:
            continue
        gmv = df[df["method"].str.startswith("GMValuator")]
        where = {chance_label(lo, hi) for lo, hi in zip(gmv["low"], gmv["high"], strict=True)}
        predictive += [chance_label(lo, hi) == "above chance" for lo, hi in zip(gmv["low"], gmv["high"], strict=True)]
        parts.append(f"{' / '.join(sorted(where))} on the {model} (LDS {gmv['lds'].min():.2f} to "
                     f"{gmv['lds'].max():.2f})")
        others = df[~df["method"].str.startswith("GMValuator") & (df["method"] != "random scores")]
        above = [f"{m} ({v:.2f})" for m, v, lo in zip(others["method"], others["lds"], others["low"], strict=True)
                 if lo > 0]
        beats.append(f"on the {model} {', '.join(above) if above else 'no baseline'} "
                     f"{'is' if len(above) == 1 else 'are' if above else 'is'} above chance")
    if parts:
        meaning = ("no variant's values predict" if not any(predictive) else
                   "some variants' values predict" if not all(predictive) else "its values predict")
        lines.append("Counterfactual validation (notebook 09, `cf_lds*.csv`): GMValuator's values are "
                     f"{'; '.join(parts)}, so {meaning}, better than chance, how retraining on a subset changes the "
                     f"model's fit to a sample. For comparison, {'; '.join(beats)}.")
    q = t.get("generators_quality")
    if q is not None:
        g = gate_table(q)
        passed = g[g["gate"] == "pass"]["generator"].tolist()
        lines.append(f"Generator quality gate (`generators_quality.csv`): {len(passed)} of {len(g)} generators pass "
                     f"({', '.join(passed) or 'none'}); FD is {g['fd_ratio'].min():.0f}-{g['fd_ratio'].max():.0f}x "
                     "the real-image floor. Rows that value a failing generator's samples are marked not comparable.")
    return lines


def verdict_counts(rows: list[Claim]) -> dict[str, int]:
    """How many rows got each verdict, in a fixed order (other "not comparable" reasons pooled)."""
    order = (*VERDICTS, BELOW_GATE, NOT_REPRODUCED_VERDICT, "not comparable (other reasons)")
    counts = dict.fromkeys(order, 0)
    for c in rows:
        counts[c.verdict if c.verdict in counts else order[-1]] += 1
    return {k: n for k, n in counts.items() if n}
