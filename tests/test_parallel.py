"""Worker pools for independent trainings: same results as in-process, thread shares, named failures."""

from __future__ import annotations

import os

import pytest
import torch

from gmval.parallel import available_cpus, resolve_workers, run_jobs


def _where(x: int) -> tuple[int, int, int]:
    return x * x, os.getpid(), torch.get_num_threads()


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise OSError("disk full")
    return x


def test_resolve_workers() -> None:
    assert resolve_workers(3) == 3
    assert resolve_workers("auto") == (1 if torch.cuda.is_available() else available_cpus())
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError, match="workers must be"):
            resolve_workers(bad)  # type: ignore[arg-type]


def test_jobs_run_in_order_on_workers_with_a_share_of_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # read here, to size each worker's share
    out = run_jobs(_where, [(i,) for i in range(5)], workers=2)
    assert [r[0] for r in out] == [0, 1, 4, 9, 16]
    assert os.getpid() not in {r[1] for r in out}
    assert {r[2] for r in out} == {2}
    # One worker, or one job: everything runs here.
    assert {r[1] for r in run_jobs(_where, [(1,), (2,)], workers=1)} == {os.getpid()}
    assert run_jobs(_where, [(3,)], workers=4)[0][1] == os.getpid()
    assert run_jobs(_where, [], workers=2) == []


def test_a_failed_job_is_named_and_its_cause_kept() -> None:
    with pytest.raises(RuntimeError, match=r"training 2 \(of 4\) failed in a worker process: disk full") as err:
        run_jobs(_fail_on_two, [(i,) for i in range(4)], workers=2, describe=lambda i: f"training {i}")
    assert isinstance(err.value.__cause__, OSError)


def _die(x: int) -> int:
    if x == 1:
        os._exit(3)  # a worker killed mid-job, as the OOM killer would
    return x


def test_a_dead_worker_is_reported_with_its_likely_causes() -> None:
    # The broken pool fails every unfinished job, so the first reported may be job 0.
    with pytest.raises(RuntimeError, match=r"job [01] \(of 2\) failed in a worker process: .*a worker died.*__main__"):
        run_jobs(_die, [(0,), (1,)], workers=2)
