"""The run's timing table and its byte-stable executed notebooks (gmval/runlog.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from gmval import runlog

WHEN = dt.datetime(2026, 12, 4, 21, 30, tzinfo=dt.timezone.utc)


def test_record_replaces_a_steps_row_and_keeps_the_others(tmp_path: Path) -> None:
    runlog.record("default", "01_motivation", 80.04, fresh=True, folder=tmp_path, when=WHEN)
    runlog.record("default", "setup", 54, fresh=True, folder=tmp_path, when=WHEN)
    runlog.record("ci", "01_motivation", 9, fresh=False, folder=tmp_path, when=WHEN)
    table = runlog.record("default", "01_motivation", 75.0, fresh=False, folder=tmp_path, when=WHEN)
    read = pd.read_csv(runlog.timings_csv(tmp_path), dtype={"step": str, "commit": str})
    assert list(read.columns) == runlog.COLUMNS
    assert len(read) == len(table) == 3
    # setup sorts before the notebooks; the rerun of 01 replaced its row
    assert read[read["profile"] == "default"]["step"].tolist() == ["setup", "01_motivation"]
    row = read[(read["profile"] == "default") & (read["step"] == "01_motivation")].iloc[0]
    assert row["seconds"] == 75.0 and row["fresh"] == 0 and row["finished_utc"] == "2026-12-04 21:30"
    assert "cores" in row["machine"]


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_record_refuses_impossible_seconds(tmp_path: Path, seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        runlog.record("default", "00_data", seconds, fresh=True, folder=tmp_path)
    assert not runlog.timings_csv(tmp_path).exists()


def test_runtime_sentences_add_up_the_table(tmp_path: Path) -> None:
    assert runlog.runtime_sentences(tmp_path) == ""
    for step, seconds in [("setup", 54), ("00_data_and_generators", 600), ("01_motivation", 90)]:
        runlog.record("default", step, seconds, fresh=True, folder=tmp_path, when=WHEN)
    runlog.record("ci", "00_data_and_generators", 6000, fresh=True, folder=tmp_path, when=WHEN)
    text = runlog.runtime_sentences(tmp_path)
    assert "54 s of setup" in text and "00 10.0, 01 1.5" in text
    assert "11.5 minutes of notebooks, 12.4 in all" in text
    assert "a fresh clone" in text and "2026-12-04" in text
    runlog.record("default", "01_motivation", 90, fresh=False, folder=tmp_path, when=WHEN)
    assert "some steps from a fresh clone" in runlog.runtime_sentences(tmp_path)
    assert runlog.runtime_sentences(tmp_path, profile="paper") == ""


def _executed(path: Path, seconds: float, bar: str) -> Path:
    clock = {"start_time": f"2026-12-04T21:{int(seconds):02d}:00", "end_time": "2026-12-04T22:00:00",
             "duration": seconds, "exception": False, "status": "completed"}
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "source": "print(1)",
                     "metadata": {"papermill": dict(clock), "execution": {"iopub.status.busy": "x"}},
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": f"0.42 {path.parent}/fig.png\n"},
                                 {"output_type": "stream", "name": "stderr", "text": bar},
                                 {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}]}],
          "metadata": {"papermill": {**clock, "parameters": {"profile": "ci"}}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_published_notebooks_differ_only_where_the_run_does(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # two clones (a, b) of the repository, two runs with other clocks and progress rates
    a = runlog.publish_notebook(_executed(tmp_path / "a" / "01_x.ipynb", 12.5, "100%|#| 3.1 it/s"), tmp_path / "pa",
                                root=tmp_path / "a")
    b = runlog.publish_notebook(_executed(tmp_path / "b" / "01_x.ipynb", 40.0, "100%|#| 9.9 it/s"), tmp_path / "pb",
                                root=tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert "0.42 <repo>/fig.png" in a.read_text()
    cell = json.loads(a.read_text())["cells"][0]
    assert [o.get("name", o["output_type"]) for o in cell["outputs"]] == ["stdout", "display_data"]
    assert cell["metadata"]["papermill"] == {"status": "completed"} and "execution" not in cell["metadata"]
    assert json.loads(a.read_text())["metadata"]["papermill"]["parameters"] == {"profile": "ci"}


def test_one_record_call_times_and_publishes_a_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runlog.paths, "FIGURES", tmp_path / "figures")
    executed = _executed(tmp_path / "02_y.ipynb", 3.0, "bar")
    runlog.main(["record", "default", "02_y", "3", "1", "--executed", str(executed)])
    table = pd.read_csv(runlog.timings_csv(), dtype={"step": str})
    assert table[["step", "seconds", "fresh"]].values.tolist() == [["02_y", 3.0, 1]]
    published = json.loads((tmp_path / "figures" / "notebooks" / "02_y.ipynb").read_text())
    assert [o["name"] for o in published["cells"][0]["outputs"] if "name" in o] == ["stdout"]
