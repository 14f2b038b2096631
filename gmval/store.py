"""On-disk artefacts keyed by their parameters, written atomically, resumable in chunks.

Every expensive stage (embeddings, indexes, re-ranking features, quality scores) writes
an *artefact*: a folder named ``<stage>-<hash of its parameters>`` holding
``metadata.json`` and arrays saved as ``.npy`` (memory-mapped on load), in the spirit of
TRAK's saver. A changed parameter gives a different key, so a stale artefact is never
reused; a folder whose metadata does not match the request is refused with an error.

Folders appear only once complete (written under a temporary name, then renamed).
Long stages write through :class:`ChunkWriter` into ``<key>.partial`` and record how
many rows are done after each chunk, with a digest of each chunk, so an interrupted run
resumes where it stopped and never publishes rows its arrays cannot prove.
Per-row results needed for changing subsets of rows (re-ranking features of whichever
training images are recalled) live in a :class:`RowCache`, ``<key>.rows``, filled on demand.

Runs may share one cache folder: every write of a key holds that key's file lock
(``.locks/<key>.lock``, an OS lock released even when its process is killed), so a second
writer waits and then reuses what the first published. Temporary folders left by killed
runs are removed on the store's first write, each only while nobody holds its key's lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from gmval import __version__

FORMAT = 1  # bump when the on-disk layout of artefacts changes
LOCKS = ".locks"  # folder of the per-key lock files, inside the store


class CacheError(RuntimeError):
    """An artefact on disk is corrupt or does not match the parameters that asked for it."""


def canonical(params: dict[str, Any]) -> str:
    """JSON with sorted keys and no whitespace variance: the text that is hashed."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (Path, tuple)):
        return str(obj) if isinstance(obj, Path) else list(obj)
    raise TypeError(f"parameter of type {type(obj).__name__} cannot be part of a cache key: {obj!r}")


def artefact_key(stage: str, params: dict[str, Any]) -> str:
    """``<stage>-<16 hex digits>`` from the canonical JSON of ``params``."""
    digest = hashlib.sha256(canonical({"format": FORMAT, **params}).encode()).hexdigest()[:16]
    return f"{stage}-{digest}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode())


@dataclass(frozen=True)
class Artifact:
    """A complete artefact folder.

    Attributes:
        path: the folder.
        metadata: its parsed ``metadata.json``.
    """

    path: Path
    metadata: dict[str, Any]

    def array(self, name: str, mmap: bool = True) -> np.ndarray:
        """The array ``name``, memory-mapped read-only unless ``mmap`` is False."""
        file = self.path / f"{name}.npy"
        try:
            arr = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CacheError(f"artefact array {file} is unreadable ({exc}); delete {self.path} to recompute") from exc
        expected = self.metadata.get("arrays", {}).get(name)
        if expected is not None and list(arr.shape) != expected["shape"]:
            raise CacheError(f"artefact array {file} has shape {arr.shape}, metadata says {expected['shape']}; "
                             f"delete {self.path} to recompute")
        return arr

    def table(self, name: str) -> pd.DataFrame:
        """The table ``name`` (stored as CSV)."""
        return pd.read_csv(self.path / f"{name}.csv")

    def file(self, name: str) -> Path:
        """Path of an extra file stored in the artefact."""
        return self.path / name


class ArtifactStore:
    """A folder of artefacts. ``root=None`` keeps nothing on disk (every stage recomputes).

    Args:
        root: the folder; created on first write.
    """

    def __init__(self, root: str | Path | None) -> None:
        self.root = None if root is None else Path(root)
        self._swept = False

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _key_lock(self, key: str) -> FileLock:
        assert self.root is not None
        folder = self.root / LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        # One reentrant object per file and process: a second flock on a new descriptor
        # would block its own process (a resumed writer while an abandoned one lives).
        return FileLock(folder / f"{key}.lock", thread_local=False, is_singleton=True)

    def acquire(self, stage: str, params: dict[str, Any]) -> FileLock | None:
        """Take the lock of the artefact ``stage``/``params`` (None when uncached); the caller releases it."""
        if self.root is None:
            return None
        self.sweep()
        lock = self._key_lock(artefact_key(stage, params))
        lock.acquire()
        return lock

    @contextlib.contextmanager
    def lock(self, stage: str, params: dict[str, Any]) -> Iterator[None]:
        """Hold the key's lock for the duration, e.g. around load-compute-save, so that a
        concurrent run computing the same artefact waits and then loads it."""
        lock = self.acquire(stage, params)
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def sweep(self) -> list[Path]:
        """Remove temporary folders left by killed saves (once per store); returns those removed.

        A folder is removed only if its key's lock can be taken at once, i.e. no live run is
        writing it; resumable ``.partial`` and ``.rows`` folders are kept.
        """
        if self.root is None or self._swept or not self.root.is_dir():
            return []
        self._swept = True
        removed = []
        for tmp in self.root.glob(".*.tmp-*"):
            key = tmp.name[1:].partition(".tmp-")[0]
            lock = self._key_lock(key)
            if not tmp.is_dir() or lock.is_locked:  # held by this process: a save in flight
                continue
            try:
                with lock.acquire(blocking=False):
                    shutil.rmtree(tmp, ignore_errors=True)
                    removed.append(tmp)
            except Timeout:
                continue
        return removed

    def _path(self, stage: str, params: dict[str, Any]) -> Path:
        assert self.root is not None
        return self.root / artefact_key(stage, params)

    def _working_dir(self, owner: object, stage: str, params: dict[str, Any], suffix: str
                     ) -> tuple[Path, weakref.finalize | None]:
        """The folder an in-progress artefact fills: ``<key><suffix>`` in the store, or, uncached,
        a scratch folder removed with ``owner`` (the finaliser is returned, to detach on hand-over)."""
        if self.root is None:
            folder = Path(tempfile.mkdtemp(prefix=f"gmval-{stage}-"))
            return folder, weakref.finalize(owner, shutil.rmtree, folder, True)
        return self._path(stage, params).with_name(artefact_key(stage, params) + suffix), None

    def load(self, stage: str, params: dict[str, Any]) -> Artifact | None:
        """The artefact computed for exactly ``params``, or None if there is none yet.

        Raises:
            CacheError: if the folder exists but its metadata is unreadable or records other
                parameters (a hand-edited or colliding folder); nothing is overwritten.
        """
        if self.root is None:
            return None
        path = self._path(stage, params)
        if not path.is_dir():
            return None
        meta = _read_metadata(path)
        if meta.get("stage") != stage or canonical(meta.get("params", {})) != canonical(params):
            raise CacheError(f"artefact {path} was written for other parameters; refusing to mix "
                             f"configurations (delete the folder to recompute)")
        return Artifact(path, meta)

    def save(self, stage: str, params: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
             tables: dict[str, pd.DataFrame] | None = None,
             extra: Callable[[Path], None] | None = None) -> Artifact:
        """Write an artefact atomically and return it.

        Args:
            stage: stage name (the first part of the folder name).
            params: everything the result depends on.
            arrays: arrays saved as ``<name>.npy``.
            tables: DataFrames saved as ``<name>.csv``.
            extra: called with the temporary folder to write other files (e.g. a faiss index).
        """
        arrays = arrays or {}
        tables = tables or {}
        if self.root is None:
            tmp = Path(tempfile.mkdtemp(prefix=f"gmval-{stage}-"))
            _write_payload(tmp, stage, params, arrays, tables, extra)
            return _scratch(Artifact(tmp, _read_metadata(tmp)), tmp)
        final = self._path(stage, params)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(stage, params):
            if final.is_dir():  # a concurrent run published it while this one computed
                return Artifact(final, _read_metadata(final))
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
            try:
                _write_payload(tmp, stage, params, arrays, tables, extra)
                _publish(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return Artifact(final, _read_metadata(final))

    def rows(self, stage: str, params: dict[str, Any], shape: tuple[int, int], dtype: str) -> RowCache:
        """A per-row cache of shape (rows, width), filled on demand (see :class:`RowCache`)."""
        return RowCache(self, stage, params, shape, dtype)

    def chunked(self, stage: str, params: dict[str, Any], arrays: dict[str, tuple[tuple[int, ...], str]]
                ) -> ChunkWriter:
        """A resumable writer for arrays filled row-chunk by row-chunk.

        Args:
            arrays: name -> (shape, dtype); all share the first dimension (rows).
        """
        return ChunkWriter(self, stage, params, arrays)

    def cached_rows(self, stage: str, params: dict[str, Any], name: str, shape: tuple[int, int], dtype: str,
                    produce: Callable[[int], Iterator[tuple[slice, np.ndarray]]],
                    bar: Callable[[], contextlib.AbstractContextManager[Any]]) -> np.ndarray:
        """The array ``name`` of a resumable chunked artefact; ``produce(first missing row)`` fills what is not cached.

        Without a cache the array is filled in memory (a disabled store would leave temporary folders).

        Args:
            stage / params: the artefact's identity.
            name / shape / dtype: the array.
            produce: yields (rows, block) from the given first row to the end.
            bar: makes the progress bar (a context manager with ``update(count)``, e.g. tqdm).
        """
        if not self.enabled:
            out = np.empty(shape, dtype=dtype)
            with bar() as progress:
                for rows, block in produce(0):
                    out[rows] = block
                    progress.update(rows.stop - rows.start)
            return out
        art = self.load(stage, params)
        if art is None:
            writer = self.chunked(stage, params, {name: (shape, dtype)})
            with bar() as progress:
                progress.update(writer.done)
                for rows, block in produce(writer.done):
                    writer.write(rows, **{name: block})
                    progress.update(rows.stop - rows.start)
            art = writer.finish()
        return np.asarray(art.array(name, mmap=False))


class ChunkWriter:
    """Fills memory-mapped arrays in row chunks and survives interruption.

    Use :meth:`pending` to get the row ranges still to compute, :meth:`write` each
    chunk, then :meth:`finish` to publish the artefact (or use it as a context manager,
    which releases the key's lock if the computation fails). Progress is committed after
    every chunk with a digest of the chunk's rows, so a crash loses at most the chunk in
    flight, and a resumed writer trusts only rows whose digests its arrays reproduce.

    The writer holds its key's lock from construction to :meth:`finish` or :meth:`close`;
    a writer that had to wait for it and finds the artefact published meanwhile has
    nothing pending, and :meth:`finish` returns that artefact.
    """

    def __init__(self, store: ArtifactStore, stage: str, params: dict[str, Any],
                 arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
        rows = {shape[0] for shape, _ in arrays.values()}
        if len(rows) != 1:
            raise ValueError(f"chunked arrays must share their first dimension, got {rows}")
        self.rows = rows.pop()
        self.store, self.stage, self.params, self.specs = store, stage, params, arrays
        self.mm: dict[str, np.ndarray] = {}
        self.chunks: list[tuple[int, int, dict[str, str]]] = []
        self.done = 0
        self._lock = store.acquire(stage, params)
        self._release = weakref.finalize(self, _release, self._lock)
        try:
            self.published = store.load(stage, params)
            if self.published is not None:
                self.done = self.rows
                return
            self.dir, self._cleanup = store._working_dir(self, stage, params, ".partial")
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".progress.json.*"):  # a commit cut short by a kill
            stale.unlink(missing_ok=True)
        spec_meta = {n: {"shape": list(s), "dtype": d} for n, (s, d) in self.specs.items()}
        self._state = {"stage": self.stage, "params": self.params, "arrays": spec_meta}
        progress = self.dir / "progress.json"
        if progress.exists():
            try:
                state = json.loads(progress.read_text())
                claimed, chunks = int(state["done"]), [(int(a), int(b), dict(d)) for a, b, d in state["chunks"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CacheError(f"partial artefact {self.dir} has an unreadable progress.json ({exc}); "
                                 f"delete {self.dir} to restart") from exc
            if canonical(state.get("params", {})) != canonical(self.params) or state.get("arrays") != spec_meta:
                raise CacheError(f"partial artefact {self.dir} belongs to other parameters; delete it to restart")
            self._resume(claimed, chunks)
        for name, (shape, dtype) in self.specs.items():
            if name not in self.mm:
                self.mm[name] = np.lib.format.open_memmap(self.dir / f"{name}.npy", mode="w+", dtype=dtype,
                                                          shape=shape)
        self._commit()

    def _resume(self, claimed: int, chunks: list[tuple[int, int, dict[str, str]]]) -> None:
        """Reopen the arrays and keep the leading chunks whose digests they reproduce."""
        for name, (shape, dtype) in self.specs.items():
            try:
                mm = np.load(self.dir / f"{name}.npy", mmap_mode="r+", allow_pickle=False)
            except (OSError, ValueError):
                break
            if mm.shape != tuple(shape) or mm.dtype != np.dtype(dtype):
                break
            self.mm[name] = mm
        else:
            for start, stop, digests in chunks:
                if start != self.done or stop > min(claimed, self.rows) or self._digests(slice(start, stop)) != digests:
                    break
                self.chunks.append((start, stop, digests))
                self.done = stop
        if self.done < claimed:
            warnings.warn(f"partial artefact {self.dir}: progress.json records {claimed} rows, its arrays prove "
                          f"{self.done}; recomputing from row {self.done}", stacklevel=4)
        if len(self.mm) < len(self.specs):  # an array is missing or malformed: nothing in it can be trusted
            self.mm.clear()
            self.chunks, self.done = [], 0

    def _digests(self, rows: slice) -> dict[str, str]:
        return {name: hashlib.blake2b(np.ascontiguousarray(mm[rows]).data, digest_size=16).hexdigest()
                for name, mm in self.mm.items()}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush what is written and release the key's lock (the partial folder stays, to resume)."""
        for mm in self.mm.values():
            mm.flush()
        self._release()

    def pending(self, chunk: int) -> Iterator[slice]:
        """Row slices of at most ``chunk`` rows not yet written, in order."""
        if chunk < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk}")
        for start in range(self.done, self.rows, chunk):
            yield slice(start, min(start + chunk, self.rows))

    def write(self, rows: slice, **values: np.ndarray) -> None:
        """Store one chunk (rows must continue where the last chunk ended)."""
        if rows.start != self.done:
            raise ValueError(f"chunk starts at row {rows.start}, expected {self.done}")
        for name, mm in self.mm.items():
            mm[rows] = values[name]
            mm.flush()
        self.chunks.append((rows.start, rows.stop, self._digests(rows)))
        self.done = rows.stop
        self._commit()

    def _commit(self) -> None:
        atomic_write_text(self.dir / "progress.json",
                          canonical({**self._state, "done": self.done, "chunks": self.chunks}))

    def finish(self) -> Artifact:
        """Publish the completed arrays as an artefact (or return the one a concurrent run published)."""
        if self.published is not None:
            self.close()
            return self.published
        if self.done != self.rows:
            raise RuntimeError(f"{self.stage}: {self.done} of {self.rows} rows written")
        try:
            for mm in self.mm.values():
                mm.flush()
            self.mm.clear()
            (self.dir / "progress.json").unlink()
            _write_metadata(self.dir, self.stage, self.params,
                            {n: {"shape": list(s), "dtype": d} for n, (s, d) in self.specs.items()}, [])
            if self._cleanup is not None:
                self._cleanup.detach()  # the folder now belongs to the artefact
                return _scratch(Artifact(self.dir, _read_metadata(self.dir)), self.dir)
            final = self.store._path(self.stage, self.params)
            _publish(self.dir, final)
            return Artifact(final, _read_metadata(final))
        finally:
            self.close()


def _release(lock: FileLock | None) -> None:
    if lock is not None:
        lock.release()


class RowCache:
    """A (rows, width) array whose rows are computed the first time any caller needs them.

    Unlike a :class:`ChunkWriter`, which fills all rows in order, it serves any subset:
    re-ranking needs the features of the recalled training images, a different subset
    for every generated set, and each row is computed once per training set. A row is
    marked filled only after its values are flushed, so an interruption loses at most
    the chunk in flight. The folder's ``metadata.json`` is checked on every open.
    """

    def __init__(self, store: ArtifactStore, stage: str, params: dict[str, Any], shape: tuple[int, int],
                 dtype: str) -> None:
        self.dir, self._cleanup = store._working_dir(self, stage, params, ".rows")
        self.store, self.stage, self.params = store, stage, params
        meta = {"stage": stage, "params": json.loads(canonical(params)),
                "arrays": {"values": {"shape": list(shape), "dtype": dtype}}, "format": FORMAT}
        values, filled = self.dir / "values.npy", self.dir / "filled.npy"
        with store.lock(stage, params):  # a concurrent creator would truncate the other's arrays
            if (self.dir / "metadata.json").exists():
                if canonical(_read_metadata(self.dir)) != canonical(meta):
                    raise CacheError(f"row cache {self.dir} belongs to other parameters or shapes; refusing to mix "
                                     f"configurations (delete the folder to recompute)")
                try:
                    self.values = np.load(values, mmap_mode="r+")
                    self.filled = np.load(filled, mmap_mode="r+")
                except (OSError, ValueError) as exc:
                    raise CacheError(f"row cache {self.dir} is unreadable ({exc}); delete it to recompute") from exc
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.values = np.lib.format.open_memmap(values, mode="w+", dtype=dtype, shape=shape)
                self.filled = np.lib.format.open_memmap(filled, mode="w+", dtype=bool, shape=(shape[0],))
                atomic_write_text(self.dir / "metadata.json", json.dumps(meta, indent=1, sort_keys=True))

    def missing(self, rows: np.ndarray) -> np.ndarray:
        """The sorted unique rows of ``rows`` not computed yet."""
        rows = np.unique(rows)
        return rows[~self.filled[rows]]

    def fill(self, rows: np.ndarray, compute: Callable[[np.ndarray], np.ndarray], chunk: int,
             progress: Callable[[int], object] | None = None) -> np.ndarray:
        """Compute the missing ones of ``rows`` in chunks; returns the (memory-mapped) array.

        Args:
            rows: row indices needed (any order, repeats allowed).
            compute: sorted row indices -> their values (len(rows), width).
            chunk: rows per call of ``compute``.
            progress: called with the number of rows after each chunk.
        """
        if chunk < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk}")
        # Held while filling: a concurrent run needing the same rows waits, then finds them filled
        # (the arrays are shared mappings of one file).
        with self.store.lock(self.stage, self.params):
            todo = self.missing(rows)
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                self.values[part] = compute(part)
                self.values.flush()
                self.filled[part] = True
                self.filled.flush()
                if progress is not None:
                    progress(len(part))
        return self.values


_T = TypeVar("_T")


def _scratch(owner: _T, folder: Path) -> _T:
    """Tie an uncached store's scratch folder to ``owner``: removed when ``owner`` is collected.

    Arrays already memory-mapped from it stay readable (an unlinked file lives while mapped).
    """
    weakref.finalize(owner, shutil.rmtree, folder, True)
    return owner


def _write_payload(folder: Path, stage: str, params: dict[str, Any], arrays: dict[str, np.ndarray],
                   tables: dict[str, pd.DataFrame], extra: Callable[[Path], None] | None) -> None:
    specs = {}
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        np.save(folder / f"{name}.npy", arr, allow_pickle=False)
        specs[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    if extra is not None:
        extra(folder)
    _write_metadata(folder, stage, params, specs, sorted(tables))


def _write_metadata(folder: Path, stage: str, params: dict[str, Any], arrays: dict[str, Any],
                    tables: list[str]) -> None:
    meta = {"stage": stage, "params": json.loads(canonical(params)), "arrays": arrays, "tables": tables,
            "format": FORMAT, "gmval_version": __version__}
    atomic_write_text(folder / "metadata.json", json.dumps(meta, indent=1, sort_keys=True))


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "metadata.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CacheError(f"artefact {path} has no readable metadata.json ({exc}); delete it to recompute") from exc


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
    except OSError:
        if final.is_dir():  # another process published the same artefact first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise
