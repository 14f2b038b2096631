"""`gmval value` on folders of images, and its error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gmval.cli import main


def _write(folder: Path, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    for i, img in enumerate(images):
        sub = folder / str(labels[i]) if labels is not None else folder
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0]).save(sub / f"img{i:04d}.png")


@pytest.fixture()
def folders(split, tmp_path) -> tuple[Path, Path]:
    train, gen = split
    _write(tmp_path / "train", train.images[:400].numpy(), train.labels[:400])
    _write(tmp_path / "gen", np.concatenate([train.images[:3].numpy(), gen.images[:5].numpy()]))
    return tmp_path / "train", tmp_path / "gen"


def test_value_command_writes_tables_and_grid(folders, tmp_path, capsys) -> None:
    train_dir, gen_dir = folders
    out = tmp_path / "out"
    code = main(["value", "--train", str(train_dir), "--generated", str(gen_dir), "--out", str(out),
                 "--encoder", "pixels", "--rerank", "l2", "-k", "5", "--index", "pq", "--index-arg", "m=8",
                 "--index-arg", "nbits=6", "--no-cache", "--quiet", "--grid", "3"])
    assert code == 0, capsys.readouterr().err
    values = pd.read_csv(out / "values.csv")
    contributors = pd.read_csv(out / "contributors.csv")
    assert len(values) == 400 and len(contributors) == 8 * 5
    assert (out / "contributors.png").stat().st_size > 1000
    # The three exact copies find themselves first (ids are relative paths).
    first = contributors.query("rank == 1").sort_values("generated_id").head(3)
    assert [Path(p).name for p in first["train_id"]] == ["img0000.png", "img0001.png", "img0002.png"]
    assert "timings_s" in capsys.readouterr().out


def test_value_command_reports_bad_input(folders, tmp_path, capsys) -> None:
    train_dir, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["value", "--train", str(train_dir), "--generated", str(empty), "--out", str(tmp_path / "o"),
                 "--encoder", "pixels", "--no-cache", "--quiet"])
    assert code == 2 and "empty" in capsys.readouterr().err
    code = main(["value", "--train", str(train_dir), "--generated", str(train_dir), "--out", str(tmp_path / "o"),
                 "--encoder", "pixels", "-k", "500", "--no-cache", "--quiet"])
    assert code == 2 and "k=500 exceeds the training set" in capsys.readouterr().err
    (train_dir / "0" / "broken.png").write_bytes(b"not a png")
    code = main(["value", "--train", str(train_dir), "--generated", str(train_dir), "--out", str(tmp_path / "o"),
                 "--encoder", "pixels", "--no-cache", "--quiet"])
    assert code == 2 and "broken.png" in capsys.readouterr().err


def test_list_command(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0" in out and "dreamsim" in out and "mnist" in out


def _run(train_dir: Path, gen_dir: Path, out: Path, *extra: str) -> int:
    return main(["value", "--train", str(train_dir), "--generated", str(gen_dir), "--out", str(out),
                 "--encoder", "pixels", "-k", "5", "--quiet", *extra])


def _beside(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_out_is_replaced_as_a_whole(folders, tmp_path, capsys, monkeypatch) -> None:
    train_dir, gen_dir = folders
    out = tmp_path / "out"
    assert _run(train_dir, gen_dir, out, "--no-cache", "--grid", "2") == 0
    assert (out / "contributors.png").exists()
    first = (out / "config.json").read_text()
    # A run that fails after writing its tables leaves the previous results untouched.
    import gmval.plotting

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "contributors.png"))

    monkeypatch.setattr(gmval.plotting, "save_figure", full_disk)
    assert _run(train_dir, gen_dir, out, "--no-cache", "-k", "3", "--grid", "2") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "No space left on device" in err, err
    assert (out / "config.json").read_text() == first and (out / "contributors.png").exists()
    assert _beside(out) == []
    # A successful run replaces the whole folder: no file of the earlier run survives.
    monkeypatch.undo()
    assert _run(train_dir, gen_dir, out, "--no-cache", "-k", "3", "--grid", "0") == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "contributors.csv", "report.html", "values.csv"]
    assert len(pd.read_csv(out / "contributors.csv")) == 8 * 3
    assert _beside(out) == []


def test_out_inside_an_input_or_over_a_user_folder_is_refused(folders, tmp_path, capsys) -> None:
    train_dir, gen_dir = folders
    for out, what in ((train_dir / "results", "inside --train"), (gen_dir, "inside --generated"),
                      (tmp_path, "is inside --out")):
        assert _run(train_dir, gen_dir, out, "--no-cache") == 2
        assert what in capsys.readouterr().err
    assert not (train_dir / "results").exists()
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert _run(train_dir, gen_dir, user, "--no-cache") == 2
    assert "not an earlier gmval output" in capsys.readouterr().err
    assert [p.name for p in user.iterdir()] == ["notes.txt"]


def test_os_error_is_one_clear_line(folders, tmp_path, capsys) -> None:
    train_dir, gen_dir = folders
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert _run(train_dir, gen_dir, blocker / "out", "--no-cache") == 2
    err = capsys.readouterr().err
    assert err.startswith("gmval: error: ") and err.strip().count("\n") == 0
    assert ("File exists" in err or "Not a directory" in err) and str(blocker) in err


def test_cache_dir_none_disables_the_cache(folders, tmp_path, monkeypatch) -> None:
    train_dir, gen_dir = folders
    monkeypatch.chdir(tmp_path)
    assert _run(train_dir, gen_dir, tmp_path / "out", "--cache-dir", "none") == 0
    assert not (tmp_path / "none").exists()
    assert _run(train_dir, gen_dir, tmp_path / "out", "--cache-dir", "./cache") == 0
    assert any(p.name.startswith("embed-") for p in (tmp_path / "cache").iterdir())


def test_value_command_on_mixed_size_photos_needs_no_flags(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    sizes = [(40, 60), (64, 48), (50, 50), (80, 30), (45, 70)]
    for folder, n in (("train", 30), ("gen", 4)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            h, w = sizes[i % len(sizes)]
            smooth = np.cumsum(np.cumsum(rng.normal(size=(h, w, 3)), axis=0), axis=1)
            img = np.clip(128 + 4 * smooth, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / folder / f"p{i:02d}.{'png' if i % 2 else 'jpg'}")
    code = main(["value", "--train", str(tmp_path / "train"), "--generated", str(tmp_path / "gen"),
                 "--out", str(tmp_path / "out"), "--encoder", "pixels", "--encoder-arg", "resolution=16",
                 "-k", "3", "--no-cache", "--quiet", "--grid", "2"])
    assert code == 0, capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "out" / "values.csv")) == 30
