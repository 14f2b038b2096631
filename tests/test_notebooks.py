"""Every notebook runs headlessly with the `ci` profile and writes its figures and tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from gmval import paths

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
    for stem in expected["figures"]:
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 2000, f"{stem}.{ext}"
