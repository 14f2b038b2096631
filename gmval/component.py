"""What every swappable stage component shares: a name, its parameters, a device."""

from __future__ import annotations

from typing import Any

import torch


def default_device() -> torch.device:
    """CUDA when present, else CPU: the GPU path is taken automatically."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Component:
    """Base of encoders, distances and quality models.

    Subclasses set ``name`` and extend :meth:`params` with every setting that changes
    their output; the valuator hashes ``params()`` into cache keys, so a setting left
    out would let a stale artefact be reused.

    Args:
        device: where to run; ``None`` picks CUDA when available.
        batch_size: images per forward pass.
    """

    name: str = "component"
    #: Bumped by a subclass when its outputs change for the same parameters.
    version: int = 1

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 256) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        if batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def params(self) -> dict[str, Any]:
        """Everything the output depends on (device and batch size excluded)."""
        return {"name": self.name, "version": self.version}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k not in ("name", "version"))
        return f"{type(self).__name__}({args})"
