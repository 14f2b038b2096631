"""The artefact store shared by concurrent and killed runs: locks, stale partial folders, orphans,
corrupt files. The process tests start real interpreters (tests/_store_worker.py) on one cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gmval.store import ArtifactStore, CacheError, artefact_key

WORKER = Path(__file__).with_name("_store_worker.py")
ROOT = Path(__file__).resolve().parents[1]
N, CHUNK = 48, 4


def _start(cache: Path, out: Path, log: Path, go: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(WORKER), str(cache), str(out), str(log), str(go), str(N),
                             str(CHUNK), str(delay)], env=env)


def _wait(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def _reference() -> np.ndarray:
    sys.path.insert(0, str(WORKER.parent))
    try:
        from _store_worker import images
    finally:
        sys.path.pop(0)
    return images(N).images.reshape(N, -1).numpy().astype(np.float32) / 255.0


def _rows_by_pid(log: Path) -> dict[int, int]:
    rows: dict[int, int] = {}
    for line in log.read_text().split("\n"):
        if line:
            pid, count = map(int, line.split())
            rows[pid] = rows.get(pid, 0) + count
    return rows


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.endswith(".partial") or ".tmp-" in p.name)


def test_two_processes_on_one_cache_compute_once_and_agree(tmp_path: Path) -> None:
    cache, log, go = tmp_path / "cache", tmp_path / "rows.log", tmp_path / "go"
    outs = [tmp_path / "a.npy", tmp_path / "b.npy"]
    procs = [_start(cache, out, log, go, delay=0.1) for out in outs]
    try:
        _wait(lambda: all(Path(f"{o}.ready").exists() for o in outs), "workers did not start")
        go.touch()  # both start embedding the same key at once
        assert [p.wait(timeout=180) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()
    ref = _reference()
    for out in outs:
        np.testing.assert_allclose(np.load(out), ref, rtol=0, atol=1e-7)
    # The second writer waited for the lock and reused the first one's artefact.
    assert sum(_rows_by_pid(log).values()) == N
    assert _leftovers(cache) == []


def test_killed_writer_is_resumed_by_the_waiting_one(tmp_path: Path) -> None:
    cache, log, go = tmp_path / "cache", tmp_path / "rows.log", tmp_path / "go"
    first, second = tmp_path / "a.npy", tmp_path / "b.npy"
    a = _start(cache, first, log, go, delay=1.0)
    b = None
    try:
        _wait(lambda: Path(f"{first}.ready").exists(), "worker did not start")
        go.touch()
        def partial_done() -> int:
            found = list(cache.glob("embed-*.partial/progress.json"))
            return json.loads(found[0].read_text())["done"] if found else 0

        _wait(lambda: partial_done() >= 3 * CHUNK, "no progress")
        b = _start(cache, second, log, go, delay=0.0)  # blocks on the lock A holds
        _wait(lambda: Path(f"{second}.ready").exists(), "second worker did not start")
        time.sleep(0.5)
        assert a.poll() is None and partial_done() < N, "the first worker finished before it could be killed"
        # B is paused while A dies and A's progress is read: once B holds the lock it moves the
        # .partial on, and the read would race with it.
        os.kill(b.pid, signal.SIGSTOP)
        os.kill(a.pid, signal.SIGKILL)
        assert a.wait(timeout=30) == -signal.SIGKILL
        progress = partial_done()
        os.kill(b.pid, signal.SIGCONT)
        assert b.wait(timeout=180) == 0
    finally:
        a.kill()
        if b is not None:
            b.kill()
    np.testing.assert_allclose(np.load(second), _reference(), rtol=0, atol=1e-7)
    rows = _rows_by_pid(log)
    # B resumed where A's last committed chunk ended: it computed only the rest.
    assert rows[b.pid] == N - progress and 0 < progress < N
    assert _leftovers(cache) == []


def _fill(writer, upto: int | None = None) -> None:
    for rows in writer.pending(3):
        if upto is not None and rows.start >= upto:
            break
        writer.write(rows, v=np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] + 1)


def test_partial_whose_array_is_lost_restarts_instead_of_publishing_zeros(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"v": ((10, 1), "float32")}
    writer = store.chunked("c", {"p": 1}, spec)
    _fill(writer, upto=6)  # then abandoned, as by a crash
    (writer.dir / "v.npy").unlink()  # progress.json still says 6 rows are done
    with pytest.warns(UserWarning, match="records 6 rows, its arrays prove 0"):
        resumed = ArtifactStore(tmp_path).chunked("c", {"p": 1}, spec)
    assert resumed.done == 0
    _fill(resumed)
    np.testing.assert_array_equal(resumed.finish().array("v")[:, 0], np.arange(1, 11))


def test_partial_with_a_damaged_chunk_resumes_before_it(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"v": ((10, 1), "float32")}
    writer = store.chunked("c", {"p": 1}, spec)
    _fill(writer, upto=9)  # then abandoned, as by a crash
    mm = np.load(writer.dir / "v.npy", mmap_mode="r+")
    mm[4] = 0  # the second chunk (rows 3-5) no longer matches its digest
    mm.flush()
    del mm
    with pytest.warns(UserWarning, match="prove 3"):
        resumed = ArtifactStore(tmp_path).chunked("c", {"p": 1}, spec)
    assert resumed.done == 3
    _fill(resumed)
    np.testing.assert_array_equal(resumed.finish().array("v")[:, 0], np.arange(1, 11))


def test_corrupt_progress_file_names_the_folder(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"v": ((10, 1), "float32")}
    writer = store.chunked("c", {"p": 1}, spec)
    _fill(writer, upto=3)  # then abandoned, as by a crash
    (writer.dir / "progress.json").write_text('{"done": 3, "chun')
    with pytest.raises(CacheError, match=f"delete {writer.dir}"):
        ArtifactStore(tmp_path).chunked("c", {"p": 1}, spec)


def test_corrupt_faiss_index_names_the_folder(tmp_path: Path, split) -> None:
    from gmval.valuator import Valuator

    train, _ = split
    kwargs = {"recall": {"index": "pq", "m": 8, "nbits": 6}, "cache_dir": tmp_path, "progress": False, "k": 5}
    Valuator("pixels", **kwargs).fit(train)
    (index_file,) = tmp_path.glob("index-*/index.faiss")
    index_file.write_bytes(b"not a faiss index")
    with pytest.raises(CacheError, match=f"delete {index_file.parent}"):
        Valuator("pixels", **kwargs).fit(train)


def test_orphaned_temporary_folder_is_removed_only_when_unlocked(tmp_path: Path) -> None:
    key = artefact_key("s", {"x": 1})
    orphan = tmp_path / f".{key}.tmp-killed"
    orphan.mkdir(parents=True)
    (orphan / "a.npy").write_bytes(b"half written")
    lock_file = tmp_path / ".locks" / f"{key}.lock"
    lock_file.parent.mkdir()
    script = (f"import time; from filelock import FileLock; lock = FileLock({str(lock_file)!r}); "
              "lock.acquire(); print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        ArtifactStore(tmp_path).save("other", {"y": 1}, arrays={"a": np.ones(2)})
        assert orphan.is_dir()  # a live run may still be writing it
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    ArtifactStore(tmp_path).save("other", {"y": 2}, arrays={"a": np.ones(2)})
    assert not orphan.exists()
    ArtifactStore(tmp_path).save("s", {"x": 1}, arrays={"a": np.ones(2)})
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
