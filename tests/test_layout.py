"""The clone's layout: data/ exists with its README tracked, everything else under it ignored."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_data_folder_has_a_tracked_readme_and_ignores_the_rest() -> None:
    readme = ROOT / "data" / "README.md"
    assert readme.is_file() and "GMVAL_DATA" in readme.read_text()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", rel], cwd=ROOT, check=False).returncode == 0

    assert not ignored("data/README.md")
    assert all(ignored(rel) for rel in ("data/cache/embed-0/x.npy", "data/raw/mnist/t.gz", "data/models/m.pt",
                                        "data/anything.npy"))
