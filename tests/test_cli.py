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
