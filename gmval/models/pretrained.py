"""Generator weights trained once by the project's own training code and committed with it.

Training every generator of the ``default`` profile to the quality its experiments assume
takes longer on a 2-core CPU than a reviewer's run can pay (``figures/training/*_curve.csv``
give the measured wall time per epoch). So the zoo's trained weights ship in
``gmval/models/weights/``: one safetensors file per model and ``manifest.json``, whose entry
per model records the profile, code commit, hardware, training time, steps, measured sample
quality and the file's full sha256.

An entry is keyed by the zoo folder name ``<name>-<hash>``, the hash of everything that
defines the model (recipe version, architecture, training settings, training images:
:func:`gmval.models.zoo.generator_folder`). A changed recipe therefore has another key and
trains from scratch: committed weights are never used for code they were not trained by.

Installing copies an entry into the zoo's folder as a finished run (``params.json``, a
weights-only ``final.safetensors``, and for a β-VAE the snapshots VAE-TracIn reads), after
checking the sha256 of the file. ``GMVAL_RETRAIN=1`` (``./run_all.sh --retrain``) turns
installing off and replaces installed runs by trained ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from gmval.models.training import FINAL, PARAMS, SNAPSHOTS
from gmval.store import CacheError, atomic_write_bytes, atomic_write_text

DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "manifest.json"
#: Marker an installed run carries: the manifest entry it came from.
INSTALLED = "installed.json"
_FINAL_PREFIX = "final/"
_SNAPSHOT_PREFIX = "snapshot/"


@dataclass(frozen=True)
class Entry:
    """One committed model: its manifest entry and where its file lies."""

    key: str
    record: dict[str, Any]
    file: Path


def retraining() -> bool:
    """Whether this run trains every generator itself (``GMVAL_RETRAIN=1``) instead of installing them."""
    return os.environ.get("GMVAL_RETRAIN", "0") not in ("", "0")


def manifest(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The committed models by key (empty when there are none)."""
    path = (directory or DIR) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def entry(key: str, directory: Path | None = None) -> Entry | None:
    """The committed model of zoo folder name ``key``, or None."""
    record = manifest(directory).get(key)
    return None if record is None else Entry(key, record, (directory or DIR) / record["file"])


def sha256_of(path: Path) -> str:
    """Full sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(item: Entry) -> Path:
    """``item``'s file after checking its full sha256 against the manifest.

    Raises:
        CacheError: if the file is missing or its hash differs (a corrupt or altered checkout).
    """
    if not item.file.is_file():
        raise CacheError(f"pretrained weights {item.file} are listed in {MANIFEST} but missing; "
                         "restore the checkout or run with GMVAL_RETRAIN=1")
    digest = sha256_of(item.file)
    if digest != item.record["sha256"]:
        raise CacheError(f"pretrained weights {item.file} have sha256 {digest}, the manifest says "
                         f"{item.record['sha256']}; restore the checkout or run with GMVAL_RETRAIN=1")
    return item.file


def is_installed(folder: Path) -> bool:
    """Whether ``folder`` holds a run installed from committed weights (not trained here)."""
    return (folder / INSTALLED).is_file()


def weights_source(folder: Path) -> str:
    """What a finished run's weights came from, for keys of what they compute: a sha256 or ``"trained"``."""
    if is_installed(folder):
        return "pretrained:" + json.loads((folder / INSTALLED).read_text())["sha256"]
    return "trained"


def install(folder: Path, directory: Path | None = None) -> bool:
    """Install the committed weights of zoo folder ``folder`` there, if there are any and it holds no run.

    Returns:
        True if ``folder`` now holds an installed run; False if there is no committed entry
        for it, retraining is asked for, or it already holds a run trained here.

    Raises:
        CacheError: if the committed file fails its hash check.
    """
    if retraining():
        if is_installed(folder):
            shutil.rmtree(folder)
        return False
    if is_installed(folder):
        return True
    if folder.exists() and any(folder.iterdir()):
        return False
    item = entry(folder.name, directory)
    if item is None:
        return False
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    with safetensors.safe_open(str(verified(item)), framework="pt") as fh:
        metadata = fh.metadata() or {}
        for key in fh.keys():  # noqa: SIM118 - safe_open is not iterable
            group, _, name = key.rpartition("|")
            tensors.setdefault(group, {})[name] = fh.get_tensor(key)
    staging = folder.with_name(f".{folder.name}.installing")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / SNAPSHOTS).mkdir(parents=True)
    atomic_write_text(staging / PARAMS, json.dumps(item.record["params"], indent=1, sort_keys=True))
    for group, state in tensors.items():
        step = group.rpartition("/")[2]
        target = (staging / FINAL if group.startswith(_FINAL_PREFIX)
                  else staging / SNAPSHOTS / f"step-{step}.safetensors")
        atomic_write_bytes(target, safetensors.torch.save(state, metadata={"step": str(int(step)),
                                                                           "history": metadata.get("history", "[]")}))
    atomic_write_text(staging / INSTALLED, json.dumps(item.record, indent=1, sort_keys=True))
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return True


def _tensors_of(path: Path, modules: list[str] | None) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    with safetensors.safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open is not iterable
            if key.startswith("module.") and (modules is None or key.split(".")[1] in modules):
                out[key] = fh.get_tensor(key)
    return out


def hardware() -> str:
    """The CPU model (and GPU, when there is one) and torch's thread count, for the manifest."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}{gpu}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def export(key: str, params: dict[str, Any], weights: Path, record: dict[str, Any],
           modules: list[str] | None = None, snapshots: list[tuple[int, Path]] | None = None,
           directory: Path | None = None) -> Path:
    """Commit-ready copy of a finished run: one safetensors file and its manifest entry.

    Args:
        key: the zoo folder name the weights belong to.
        params: the run's ``params.json`` content, as :func:`gmval.models.training.train` writes it
            for that key (checked again when the installed run is loaded).
        weights: a checkpoint or snapshot holding the last step's weights (its step is the run's total).
        record: what the manifest states beside the hash (profile, code commit, hardware,
            training seconds, quality report).
        modules: the modules to keep (default all): the ones that sample, and those a
            baseline reads.
        snapshots: (step, file) of earlier weights to ship too (VAE-TracIn's).
        directory: where the file and manifest go.

    Returns:
        The written file.
    """
    directory = directory or DIR
    with safetensors.safe_open(str(weights), framework="pt") as fh:
        step = int((fh.metadata() or {})["step"])
    final = _tensors_of(weights, modules)
    tensors = {f"{_FINAL_PREFIX}{step:08d}|{k}": v for k, v in final.items()}
    for snap_step, path in snapshots or []:
        tensors |= {f"{_SNAPSHOT_PREFIX}{snap_step:08d}|{k}": v for k, v in _tensors_of(path, modules).items()}
    file = directory / f"{key}.safetensors"
    atomic_write_bytes(file, safetensors.torch.save(tensors))
    entries = manifest(directory)
    entries[key] = {**record, "file": file.name, "sha256": sha256_of(file), "bytes": file.stat().st_size,
                    "params": params, "steps": step, "modules": sorted({k.split(".")[1] for k in final}),
                    "snapshot_steps": [s for s, _ in snapshots or []]}
    atomic_write_text(directory / MANIFEST, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return file

