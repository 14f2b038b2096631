"""Pretrained-weight plumbing shared by the hub-backed components.

Every hub-backed component (CLIP, LPIPS, DreamSim, MANIQA) keeps its library's own
loading code and cache layout, so a user who already ran that library finds its files
reused. This module only adds what the libraries lack: one place that resolves the cache
roots from the environment (at call time, not at import time), SHA-256 checks, a download
helper with a timeout and an atomic write, and errors that say which file to fetch from
where, and where to put it, when a machine has no internet.

Set ``GMVAL_OFFLINE=1`` (``HF_HUB_OFFLINE=1`` has the same effect) to forbid downloads:
:func:`fetch` then fails at once instead of trying the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

from gmval import paths

CacheKind = Literal["torch", "torch_hub", "hf", "models"]

#: torch.hub's convention: ``name-<first hex digits of the SHA-256>.ext`` (torchvision uses 8).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither in the cache nor downloadable (typically: offline)."""


def offline() -> bool:
    """Whether downloads are forbidden (``GMVAL_OFFLINE`` or ``HF_HUB_OFFLINE`` set to a true value)."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
               for var in ("GMVAL_OFFLINE", "HF_HUB_OFFLINE"))


def cache_root(kind: CacheKind) -> Path:
    """Where a family of weights is cached, following the owning library's convention.

    Args:
        kind: ``"torch"``: ``$TORCH_HOME`` (default ``~/.cache/torch``); ``"torch_hub"``:
            torch.hub's folder (``$TORCH_HOME/hub``; its ``checkpoints/`` holds torchvision
            weights, ``pyiqa/`` pyiqa's); ``"hf"``: the Hugging Face hub cache
            (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``); ``"models"``: gmval's own folder
            (``$GMVAL_DATA/models``) for weights whose library has no sane default.

    Returns:
        The folder (not created).
    """
    if kind == "torch":
        return paths.torch_home()
    if kind == "torch_hub":
        # torch.hub.get_dir() also honours a torch.hub.set_dir() made by the caller.
        return Path(torch.hub.get_dir())
    if kind == "hf":
        return Path(os.environ.get("HF_HUB_CACHE", paths.hf_home() / "hub"))
    if kind == "models":
        return paths.MODELS
    raise ValueError(f"unknown cache kind {kind!r}; expected torch, torch_hub, hf or models")


@contextlib.contextmanager
def torch_hub_dir(path: str | Path) -> Iterator[Path]:
    """Point torch.hub (and so torchvision's weight cache) at ``path`` for the duration.

    torch.hub has one process-wide folder; libraries that call ``torch.hub.set_dir`` and
    never restore it (DreamSim does) would silently move every later torchvision download.
    This restores the previous setting, including "unset, follow ``$TORCH_HOME``".
    """
    previous = torch.hub._hub_dir  # the only way to restore "unset"
    torch.hub.set_dir(str(path))
    try:
        yield Path(path)
    finally:
        torch.hub._hub_dir = previous


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def hash_prefix_from_name(name: str) -> str | None:
    """The SHA-256 prefix a torch.hub-style file name carries (``alexnet-owt-7be5be79.pth``), if any."""
    match = _HASH_IN_NAME.search(Path(name).name)
    return match.group(1) if match else None


def verify(path: str | Path, sha256: str) -> None:
    """Raise :class:`ValueError` unless the file's SHA-256 starts with ``sha256``.

    Args:
        path: file to check.
        sha256: the full hex digest or a prefix of it (at least 8 digits, as torch.hub uses).
    """
    expected = sha256.lower()
    if len(expected) < 8 or not re.fullmatch(r"[0-9a-f]+", expected):
        raise ValueError(f"not a SHA-256 (prefix of >= 8 hex digits): {sha256!r}")
    actual = sha256_file(path)
    if not actual.startswith(expected):
        raise ValueError(f"{path}: SHA-256 {actual} does not match the expected {expected}")


def fetch(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` unless it is already there.

    An existing ``dest`` is trusted without re-hashing, as torch.hub does with its cache.
    The download goes to a temporary file in the same folder and is renamed into place
    only after the hash check, so an interrupted or corrupt download never looks cached.

    Args:
        url: where the file lives.
        dest: its path in the cache.
        sha256: expected SHA-256 (full or a prefix of >= 8 hex digits), checked after download.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        ``dest``.

    Raises:
        WeightsUnavailableError: offline mode is on, or the download failed; the message
            names the URL and the destination so that the file can be copied there by hand.
        ValueError: the downloaded file does not match ``sha256`` (it is deleted).
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    manual = f"download {url} on a machine with internet and put it at {dest}"
    if offline():
        raise WeightsUnavailableError(f"{dest} is missing and downloads are disabled "
                                      f"(GMVAL_OFFLINE/HF_HUB_OFFLINE): {manual}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, length=1 << 20)
        if sha256 is not None:
            verify(tmp, sha256)
        os.replace(tmp, dest)
    except OSError as exc:  # URLError, HTTPError and socket timeouts are all OSErrors
        raise WeightsUnavailableError(f"could not download {url} ({exc}); {manual}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest
