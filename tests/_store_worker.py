"""A separate process that embeds a fixed image set into a shared cache (for the concurrency tests).

Usage: ``python _store_worker.py CACHE OUT LOG GO N CHUNK DELAY``: waits until the file GO
exists, embeds N deterministic 8x8 images with a pixel encoder that sleeps DELAY seconds
per chunk and appends each chunk's row count to LOG, and saves the embeddings to OUT.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gmval.encoders.pixels import PixelEncoder
from gmval.images import ImageSet
from gmval.valuator import Valuator


def images(n: int) -> ImageSet:
    pixels = np.random.default_rng(0).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    return ImageSet(torch.from_numpy(pixels), np.arange(n), name="worker")


class SlowPixels(PixelEncoder):
    """The pixel encoder (same cache key), slowed down and counting the rows it encodes."""

    def __init__(self, log: Path, delay: float) -> None:
        super().__init__(device="cpu")
        self.log, self.delay = log, delay

    def encode(self, images: ImageSet | torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        out = super().encode(images)
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {len(out)}\n")
        return out


def main(argv: list[str]) -> None:
    cache, out, log, go = map(Path, argv[:4])
    n, chunk, delay = int(argv[4]), int(argv[5]), float(argv[6])
    torch.set_num_threads(1)
    data = images(n)
    valuator = Valuator(SlowPixels(log, delay), cache_dir=cache, chunk_size=chunk, progress=False, device="cpu")
    (out.parent / f"{out.name}.ready").touch()
    while not go.exists():
        time.sleep(0.01)
    emb, _ = valuator.embed(data)
    np.save(out, emb)


if __name__ == "__main__":
    main(sys.argv[1:])
