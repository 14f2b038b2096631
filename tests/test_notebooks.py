"""Every notebook runs headlessly with the `ci` profile and writes its figures and tables."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gmval import paths, reproduction, verdicts

NOTEBOOKS = sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: What each notebook must produce under the figures folder (stems; tables as CSV, figures as PNG + PDF).
EXPECTED = {
    "00_data_and_generators": {"tables": ["generators_quality"], "figures": ["generator_samples"]},
    "01_motivation": {"tables": ["motivation_ttest"], "figures": ["motivation_tsne", "motivation_value_histogram"]},
    "02_c1_identical_class": {"tables": ["c1_identical_class", "c1_embedding_ablation", "c1_generated_set_size"],
                              "figures": ["c1_identical_class", "c1_generated_set_size"]},
    "03_c2_identical_attributes": {"tables": ["c2_identical_attributes"],
                                   "figures": ["c2_identical_attributes", "c2_contributors"]},
    "04_c3_noisy_mnist": {"tables": ["c3_noisy_ranks", "c3_if4gan_vs_gmvaluator"],
                          "figures": ["c3_noisy_ranks", "c3_contributions_without_quality",
                                      "c3_contributions_with_quality", "c3_quality_distribution"]},
    "05_c4_efficiency": {"tables": ["c4_seconds_per_sample", "c4_scaling", "c4_whole_valuation", "c4_pq_recall"],
                         "figures": ["c4_seconds_per_sample", "c4_scaling", "c4_pq_recall"]},
    "08_engine_ablations": {"tables": ["ablation_encoder_rerank", "ablation_temperature"],
                            "figures": ["ablation_encoder_rerank", "ablation_temperature"]},
    "09_counterfactual_validation": {"tables": ["cf_lds", "cf_removal", "cf_lds_diffusion", "cf_removal_diffusion"],
                                     "figures": ["cf_lds", "cf_removal", "cf_lds_diffusion", "cf_removal_diffusion"]},
}


#: Per table: which rows must carry our number (a column that is set on our rows only; None: every row)
#: and the range that number must lie in. Rows the paper has and we cannot run (DreamSim, ImageNet)
#: come from the outer join with the paper's numbers and leave that column empty.
VALUES: dict[str, tuple[str | None, float, float]] = {
    "generators_quality": (None, 0.0, math.inf),
    "motivation_ttest": ("generator", -math.inf, math.inf),
    "c1_identical_class": ("generator", 0.0, 100.0),
    "c1_embedding_ablation": ("encoder", 0.0, 100.0),
    "c1_generated_set_size": (None, 0.0, 100.0),
    "ablation_encoder_rerank": (None, 0.0, 100.0),
    "c2_identical_attributes": ("generator", 0.0, 100.0),
    "c3_noisy_ranks": (None, 0.0, 100.0),
    "c3_if4gan_vs_gmvaluator": (None, 0.0, 100.0),
    "c4_seconds_per_sample": ("generator", 0.0, math.inf),
    "c4_whole_valuation": ("distance", 0.0, math.inf),
    "c4_scaling": (None, 0.0, math.inf),
    "c4_pq_recall": (None, 0.0, 1.0),
    "c4_benchmark_engine": ("variant", 0.0, math.inf),
    "cf_lds": (None, -1.0, 1.0),
    "cf_lds_diffusion": (None, -1.0, 1.0),
    "cf_removal": (None, -math.inf, math.inf),
    "cf_removal_diffusion": (None, -math.inf, math.inf),
}
#: Further columns with a fixed range, where present.
COLUMN_RANGES = {"p_value": (0.0, 1.0), "auroc": (0.0, 1.0), "clean_zero_share": (0.0, 1.0),
                 "noisy_bottom_decile": (0.0, 1.0), "confident_share": (0.0, 1.0), "ceiling": (0.0, 100.0),
                 "identical_class": (0.0, 1.0), "exact_identical_class": (0.0, 1.0), "fd_ratio": (0.0, math.inf)}


def check_values(folder: Path, stems: list[str]) -> None:
    """Every ``ours`` cell that should be filled is finite and in range; so are the ranged columns."""
    for stem in stems:
        table = pd.read_csv(folder / f"{stem}.csv")
        if stem not in VALUES:
            continue
        marker, low, high = VALUES[stem]
        ours = table[table[marker].notna()] if marker else table
        assert len(ours) > 0, f"{stem}: no row of ours"
        values = ours["ours"].to_numpy(float)
        if stem == "motivation_ttest":
            values = values[ours["column"].to_numpy() != "p_value"]  # p-values are checked below
        assert np.isfinite(values).all(), f"{stem}: empty or non-finite ours in {ours[~np.isfinite(ours['ours'])]}"
        assert ((values >= low) & (values <= high)).all(), f"{stem}: ours outside [{low}, {high}]"
        for column, (lo, hi) in COLUMN_RANGES.items():
            if column in ours.columns:
                got = ours[column].dropna().to_numpy(float)
                assert ((got >= lo) & (got <= hi)).all(), f"{stem}.{column} outside [{lo}, {hi}]"
        if stem == "motivation_ttest":
            p = ours.loc[ours["column"] == "p_value", "ours"].to_numpy(float)
            assert len(p) and ((p >= 0) & (p <= 1)).all(), f"{stem}: p-values"


def check_verdicts(folder: Path, stems: list[str]) -> None:
    """Every claim row has a verdict, and none of the tables written here is reported missing."""
    text = reproduction.write_index(folder / "REPRODUCTION.md", folder)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "**" in line]
    assert rows, "no claim rows"
    for line in rows:
        verdict = line.split("**")[1]
        assert verdict.startswith(ALLOWED_VERDICTS), line
        assert not any(f"{stem}.csv missing" in verdict for stem in stems), line


ALLOWED_VERDICTS = (*verdicts.VERDICTS, "not comparable")


def test_committed_tables_are_filled_and_in_range() -> None:
    stems = [s for s in VALUES if (paths.ROOT / "figures" / f"{s}.csv").exists()]
    assert len(stems) >= len(VALUES) - 2
    check_values(paths.ROOT / "figures", stems)


def test_value_check_fails_on_a_bad_cell(tmp_path: Path) -> None:
    pd.DataFrame({"generator": ["g", None], "ours": [101.0, np.nan]}).to_csv(tmp_path / "c1_identical_class.csv")
    with pytest.raises(AssertionError, match="outside"):
        check_values(tmp_path, ["c1_identical_class"])
    pd.DataFrame({"generator": ["g"], "ours": [np.nan]}).to_csv(tmp_path / "c1_identical_class.csv")
    with pytest.raises(AssertionError, match="non-finite"):
        check_values(tmp_path, ["c1_identical_class"])


def test_every_notebook_has_expectations() -> None:
    assert NOTEBOOKS, "no notebooks found"
    assert {nb.stem for nb in NOTEBOOKS} == set(EXPECTED)


def test_source_notebooks_are_committed_without_outputs() -> None:
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name
        # nbformat 4.5 cells carry ids; papermill warns on every run of a notebook without them.
        ids = [c.get("id") for c in cells]
        assert None not in ids and len(set(ids)) == len(ids), f"{nb.name}: every cell needs its own id"
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and "profile" in "".join(tagged[0]["source"]), f"{nb.name}: one parameters cell"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_ci_profile(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    figures = tmp_path / "figures"
    monkeypatch.setenv("GMVAL_FIGURES", str(figures))
    monkeypatch.setenv("GMVAL_DATA", os.environ.get("GMVAL_TEST_DATA", str(tmp_path / "data")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    papermill.execute_notebook(str(notebook), str(tmp_path / notebook.name), parameters={"profile": "ci"},
                               cwd=str(notebook.parent), kernel_name="python3", progress_bar=False)
    expected = EXPECTED[notebook.stem]
    for stem in expected["tables"]:
        table = pd.read_csv(figures / f"{stem}.csv")
        assert len(table) > 0 and {"ours", "paper"} <= set(table.columns), stem
        assert (figures / f"{stem}.json").exists()
    check_values(figures, expected["tables"])
    check_verdicts(figures, expected["tables"])
    for stem in expected["figures"]:
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 2000, f"{stem}.{ext}"
