"""scikit-learn's bundled 8x8 handwritten digits: a tiny dataset that needs no download."""

from __future__ import annotations

import numpy as np
import torch

from gmval.images import ImageSet

DIGITS_SPLITS = ("train", "all")


def load_digits(split: str = "all") -> ImageSet:
    """The 1,797 UCI digits as uint8 (N, 1, 8, 8), labels 0..9, ids 0..1796.

    The source has 17 grey levels (0..16); they are spread over 0..255 so that the
    images look like every other uint8 set to encoders and plots.

    Args:
        split: ``"all"`` or ``"train"``; both give the whole set (the data has no split,
            and ``"train"`` is accepted so that generic code can ask every dataset for it).
    """
    if split not in DIGITS_SPLITS:
        raise ValueError(f"digits has no {split!r} split; use one of {DIGITS_SPLITS} (both give all 1,797 images)")
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    pixels = np.rint(np.asarray(bunch.images) * (255.0 / 16.0)).astype(np.uint8)
    return ImageSet(
        images=torch.from_numpy(pixels).unsqueeze(1).contiguous(),
        ids=np.arange(len(pixels), dtype=np.int64),
        labels=np.asarray(bunch.target, dtype=np.int64),
        name="digits",
        classes=tuple(str(d) for d in range(10)),
    )
