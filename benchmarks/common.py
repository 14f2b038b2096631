"""What the benchmark scripts share: the machine's description, memory probes, CSV output."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from gmval.store import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones, whose help text says what they fall back to."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def machine_info(device: str) -> dict[str, Any]:
    """CPU count, torch threads, device and the 1-minute load (the machine may be shared)."""
    import torch

    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine()
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
            "device_name": name, "loadavg_1m": round(os.getloadavg()[0], 2), "torch_version": torch.__version__,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S")}


def pick_device(requested: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; anything else as given."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ResidentPeaks:
    """Peaks of this process's anonymous and file-backed resident memory, sampled by a thread.

    ``ru_maxrss`` counts pages of memory-mapped files (cached features) like any other; the
    kernel can drop those and read them again, so the split says how much of a peak is
    memory the run needs and how much is page cache it reads through a map. Linux only
    (``/proc/self/status``); elsewhere the peaks stay NaN.

    Args:
        interval_s: seconds between samples; a peak shorter than this can be missed.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        first = self.sample()
        self.anon_mb, self.file_mb = first if first is not None else (float("nan"), float("nan"))
        self._stop = threading.Event()
        self._lock = threading.Lock()  # peaks() and the sampling thread both update the maxima
        self._thread = threading.Thread(target=self._run, daemon=True)
        if first is not None:
            self._thread.start()

    @staticmethod
    def sample() -> tuple[float, float] | None:
        """(RssAnon, RssFile + RssShmem) in MiB now, or None where /proc has no such fields."""
        try:
            fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
            kib = {k: int(fields[k].split()[0]) for k in ("RssAnon", "RssFile", "RssShmem")}
        except (OSError, KeyError, ValueError):
            return None
        return kib["RssAnon"] / 1024, (kib["RssFile"] + kib["RssShmem"]) / 1024

    def _update(self) -> None:
        now = self.sample()
        if now is not None:
            with self._lock:
                self.anon_mb, self.file_mb = max(self.anon_mb, now[0]), max(self.file_mb, now[1])

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._update()

    def peaks(self) -> dict[str, float]:
        """``{"peak_anon_mb", "peak_file_mb"}`` so far (NaN where they cannot be read)."""
        self._update()
        with self._lock:
            return {"peak_anon_mb": self.anon_mb, "peak_file_mb": self.file_mb}

    def stop(self) -> None:
        """End the sampling thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def rss_mb() -> float:
    """This process's resident memory now."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def available_bytes() -> int:
    """Memory the OS could hand out now (free plus reclaimable cache)."""
    import psutil

    return int(psutil.virtual_memory().available)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` so that a reader sees the previous file or the complete new one."""
    atomic_write_text(path, frame.to_csv(index=False))


def print_table(frame: pd.DataFrame, columns: list[str]) -> None:
    """A compact console view of the columns that matter most."""
    shown = [c for c in columns if c in frame.columns]
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(frame[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
