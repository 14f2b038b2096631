"""Per-stage wall-clock accounting shared by the valuator and the baselines, so that their
timings (Table 4, the benchmarks) are measured the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm


class TimedStages:
    """Mixin: ``timings[stage]`` accumulates the seconds spent inside ``with self._timed(stage)``.

    Attributes:
        timings: seconds per stage.
        progress: whether :meth:`_bar` shows its bar.
    """

    timings: dict[str, float]
    progress: bool

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="img", disable=not self.progress, leave=False)
