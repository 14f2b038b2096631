"""What the benchmark scripts share: the machine's description, memory probes, CSV output."""

from __future__ import annotations

import argparse
import os
import platform
import resource
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
