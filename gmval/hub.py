"""Pretrained-weight plumbing shared by the hub-backed components.

Every hub-backed component (CLIP, LPIPS, DreamSim, MANIQA) keeps its library's own
loading code and cache layout, so a user who already ran that library finds its files
reused. This module only adds what the libraries lack: one place that resolves the cache
roots from the environment (at call time, not at import time), SHA-256 checks, a download
helper with a timeout and an atomic write, and errors that say which file to fetch from
where, and where to put it, when a machine has no internet.

Every weight file gmval fetches is checked against a full SHA-256 pinned in gmval's code,
also when it is found already in the cache, before anything reads it; checkpoints are read
with ``torch.load(weights_only=True)`` (:func:`load_checkpoint`), never by unpickling code.
Where no SHA-256 is pinned (the upstream does not publish one), the component takes a
``sha256`` argument and refuses to load the file without it (:func:`require_pin`).

Set ``GMVAL_OFFLINE=1`` (``HF_HUB_OFFLINE=1`` has the same effect) to forbid downloads:
:func:`fetch` then fails at once instead of trying the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from gmval import paths

CacheKind = Literal["torch", "torch_hub", "hf", "models"]

#: torch.hub's convention: ``name-<first hex digits of the SHA-256>.ext`` (torchvision uses 8).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


#: The notice bitsandbytes logs at import on AVX512-BF16 CPUs when it cannot fetch its optional
#: hub kernel (always, offline), once in every process that imports pyiqa or peft. It says
#: nothing the user can act on; other messages of that logger still pass.
BITSANDBYTES_HUB_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class _DropHubKernelNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(BITSANDBYTES_HUB_NOTICE)


# Installed at import, before any library imports bitsandbytes (getLogger returns the logger it will use).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_DropHubKernelNotice())


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither in the cache nor downloadable (typically: offline)."""


class WeightsIntegrityError(ValueError):
    """A weight file does not have its pinned SHA-256, or no SHA-256 is pinned for it."""


#: (resolved path, size, mtime, inode) -> SHA-256 of files already hashed in this process.
_HASHED: dict[tuple[str, int, int, int], str] = {}


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
    """Raise :class:`WeightsIntegrityError` unless the file's SHA-256 is ``sha256``.

    A file is hashed once per process while its size, modification time and inode stay
    the same (weight files are hundreds of MB and components are built repeatedly).

    Args:
        path: file to check.
        sha256: the full hex digest (64 digits; a prefix would let a crafted file through).
    """
    expected = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ValueError(f"not a full SHA-256 (64 hex digits): {sha256!r}")
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    actual = _HASHED.get(key) or sha256_file(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"{path}: SHA-256 {actual} does not match the pinned {expected}; the file is not the expected "
            f"weights (truncated, corrupt or replaced) and was not loaded: delete it to download it again")
    _HASHED[key] = actual


def require_pin(what: str, sha256: str | None, how: str) -> str:
    """``sha256``, or a :class:`WeightsIntegrityError` saying that ``what`` cannot be verified.

    Args:
        what: the file, as the message should name it.
        sha256: the pinned (or user-supplied) digest, None when there is none.
        how: how the user can supply one (the argument to pass).
    """
    if sha256 is None:
        raise WeightsIntegrityError(
            f"no SHA-256 is pinned in gmval for {what}, so it cannot be verified and is not loaded; "
            f"check the file's SHA-256 against its publisher and pass it as {how}")
    return sha256


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load`` of a checkpoint with ``weights_only=True`` (tensors and plain containers only).

    numpy scalars and dtypes, which training scripts often leave in checkpoints, are allowed
    too; any other object makes the load fail instead of running the pickle's code.
    """
    import numpy as np

    allowed = [np.dtype, type(np.dtype(np.float32)), type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    scalar = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
    try:
        with torch.serialization.safe_globals([scalar, *allowed]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's UnpicklingError and friends: a message, not a pickle run
        raise WeightsIntegrityError(f"{path} is not a plain weights file that can be loaded safely ({exc})"
                                    ) from exc


@contextlib.contextmanager
def forced_keyword(owner: Any, attribute: str, keyword: str, value: Any) -> Iterator[None]:
    """Within the block, every call of ``owner.attribute`` gets ``keyword=value``, whatever its caller passes."""
    original = getattr(owner, attribute)

    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs[keyword] = value
        return original(*args, **kwargs)

    setattr(owner, attribute, call)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def weights_only_loads() -> contextlib.AbstractContextManager[None]:
    """Make every ``torch.load`` in the block use ``weights_only=True``, whatever its caller passes.

    Libraries load their weights themselves, some through ``torch.hub.load_state_dict_from_url``,
    whose default is a full unpickle; they all end in ``torch.load``.
    """
    return forced_keyword(torch, "load", "weights_only", True)


def fetch(url: str, dest: str | Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` unless it is already there, and verify it either way.

    The download goes to a temporary file in the same folder and is renamed into place
    only after the hash check, so an interrupted or corrupt download never looks cached;
    a file already at ``dest`` is checked against the same pinned hash before it is used.

    Args:
        url: where the file lives.
        dest: its path in the cache.
        sha256: the pinned full SHA-256 of the file.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        ``dest``.

    Raises:
        WeightsUnavailableError: offline mode is on, or the download failed; the message
            names the URL and the destination so that the file can be copied there by hand.
        WeightsIntegrityError: the cached or downloaded file does not match ``sha256`` (a
            download is deleted; a cached file is left for the user to inspect).
    """
    dest = Path(dest)
    if dest.is_file():
        verify(dest, sha256)
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
        verify(tmp, sha256)
        os.replace(tmp, dest)
    except OSError as exc:  # URLError, HTTPError and socket timeouts are all OSErrors
        raise WeightsUnavailableError(f"could not download {url} ({exc}); {manual}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest
