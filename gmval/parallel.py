"""Independent jobs (small model trainings) on worker processes that split the CPU threads between them.

The retrained models of the counterfactual study and the generators of the zoo are small:
their steps are many short operator calls that do not keep two threads busy. On the 2-core
CPU this project is measured on, two single-threaded trainings side by side beat one
two-threaded training after the other by 1.2-1.4x (ms per step of one (8, 16, 16) UNet at
batch 32: 105 with two threads; 151 in each of two one-thread processes at once; a
(16, 32, 32) UNet at batch 64: 314, and 515 each).

Every job writes its result to its own keyed, atomically written artefact as well as returning
it, so a pool that fails loses only the jobs that had not finished; and a job is a picklable
function of picklable arguments, as any ``concurrent.futures``-style executor (a cluster's,
later) expects.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_workers(workers: int | str) -> int:
    """The number of worker processes a setting asks for.

    Args:
        workers: a count >= 1, or ``"auto"``: one per CPU without a GPU, one with a GPU (a
            single process keeps a GPU busy, and workers would each hold a CUDA context).

    Raises:
        ValueError: for anything else.
    """
    if workers == "auto":
        return 1 if torch.cuda.is_available() else available_cpus()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 or 'auto', got {workers!r}")
    return workers


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]], workers: int,
             describe: Callable[[int], str] | None = None) -> list[T]:
    """``[fn(*job) for job in jobs]``, on up to ``workers`` processes when that is more than one.

    Workers are spawned (not forked: a forked child inherits the parent's torch thread pool
    in an undefined state) and each gets an equal share of this process's torch threads.

    Args:
        fn: a module-level function (workers import it by name).
        jobs: its argument tuples.
        workers: processes to use; 1 runs the jobs here, one after the other.
        describe: names job ``i`` in the error raised when it fails.

    Raises:
        RuntimeError: from the first failed job (in job order), naming it; the cause is chained.
    """
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [fn(*job) for job in jobs]
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        results = []
        for i, future in enumerate(futures):
            try:
                results.append(future.result())
            except Exception as err:
                for later in futures[i + 1:]:
                    later.cancel()
                name = describe(i) if describe else f"job {i}"
                hint = ""
                if isinstance(err, BrokenProcessPool):
                    hint = ("; a worker died: killed, out of memory, or started from a script that lacks an "
                            "`if __name__ == '__main__':` guard, which spawned workers need (or set workers to 1)")
                raise RuntimeError(f"{name} (of {len(jobs)}) failed in a worker process: {err}{hint}") from err
    return results
