"""Converted datasets kept as ``.npy`` files so that the second load skips decoding.

Each entry is a folder ``<CACHE>/datasets/<key>/`` holding one ``.npy`` per array and a
``manifest.json`` (written last). The folder is assembled under a temporary name and
renamed into place, so a reader sees a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gmval import paths
from gmval.data.idx import current_umask

#: Bump when the layout or the conversion of any cached dataset changes.
CACHE_VERSION = 1


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where converted datasets live; default ``paths.CACHE / "datasets"``."""
    return Path(cache_dir) if cache_dir is not None else paths.CACHE / "datasets"


def entry_key(dataset: str, source: Path, **params: object) -> str:
    """``<dataset>-<k=v>...-<hash>``: readable, and distinct per source folder and version."""
    tail = "-".join(f"{k}{v}" for k, v in params.items())
    # The source folder is part of the key so that two copies (say a real one and a
    # test fixture) never share an entry.
    digest = hashlib.sha256(f"{CACHE_VERSION}|{source.resolve()}".encode()).hexdigest()[:10]
    return "-".join(s for s in (dataset, tail, digest) if s)


def load_entry(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata of a complete entry, or None if there is none."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    meta = json.loads(manifest.read_text())
    if meta.get("version") != CACHE_VERSION:
        return None
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    return arrays, meta.get("meta", {})


def save_entry(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write an entry atomically; if another process finished the same entry first, keep theirs."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it private (0700)
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.asarray(arr), allow_pickle=False)
        manifest = {"version": CACHE_VERSION, "arrays": list(arrays), "meta": meta}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:
            # os.replace cannot overwrite a non-empty folder: someone else won the race,
            # or a stale entry without a manifest is in the way.
            if (folder / "manifest.json").is_file():
                return
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
