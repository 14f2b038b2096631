"""Numeric precision of network forward passes: fp32, or bf16 autocast where it is fast.

The recall encoder and deep-feature distances are the valuation's floor. bf16 autocast
with channels-last tensors runs their convolutions on bf16 matrix units (Intel AMX /
AVX512-BF16 on CPUs, tensor cores on GPUs), 4-5x faster than fp32 on such a CPU, at
the cost of embeddings that differ from fp32 ones in the third significant digit.
``"auto"`` picks bf16 only where the hardware has those units, so a machine without
them never pays for emulated bf16. The resolved precision is part of every component's
parameters, hence of every cache key: fp32 and bf16 artefacts are never mixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]


def bf16_is_fast(device: torch.device) -> bool:
    """Whether ``device`` has native bf16 matrix units (not emulation)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where :func:`bf16_is_fast`, else ``"fp32"``; others as given.

    Raises:
        ValueError: for anything but auto, fp32 or bf16.
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


@contextlib.contextmanager
def forward_precision(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast to bf16 for a resolved ``"bf16"``; a no-op for ``"fp32"``."""
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
