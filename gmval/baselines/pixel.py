"""The raw-pixel nearest-neighbour baseline: how close each training image is to a generated one, in pixels.

It needs no model and no features, so any method that cannot beat it has learnt nothing
beyond pixel similarity; the counterfactual study reports it in its dense (−L2) and top-k
indicator forms.
"""

from __future__ import annotations

import numpy as np
import torch

from gmval.attribution import Attribution
from gmval.images import ImageSet, as_imageset, to_float


def pixel_attribution(train: ImageSet, generated: ImageSet, k: int | None = None) -> np.ndarray:
    """Raw-pixel nearest-neighbour attribution, (m, n); higher = closer in pixel space.

    Args:
        train: training images.
        generated: generated images (same shape).
        k: None scores every training image by ``-‖x_i − x̂_j‖₂`` (pixels in [0, 1]);
            an integer scores the k nearest 1 and the rest 0 (a top-k indicator).

    Raises:
        ValueError: for images of different shapes or k outside 1..n.
    """
    if train.shape != generated.shape:
        raise ValueError(f"training images are {train.shape}, generated {generated.shape}")
    if k is not None and not 1 <= k <= len(train):
        raise ValueError(f"k={k} must be between 1 and the training-set size {len(train)}")
    a = to_float(generated.images).flatten(1).double()
    b = to_float(train.images).flatten(1).double()
    # Exact differences, not the |a|²+|b|²-2ab shortcut: an exact copy must score exactly 0.
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    if k is None:
        return -d
    top = np.argsort(d, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(d)
    np.put_along_axis(out, top, 1.0, axis=1)
    return out


class PixelNearest:
    """:func:`pixel_attribution` as an :class:`~gmval.attribution.Attributor`.

    Args:
        k: None for the dense −L2 scores; an integer for the top-k indicator.
    """

    method = "pixel"

    def __init__(self, k: int | None = None) -> None:
        self.k = k
        self.train: ImageSet | None = None

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray, model: None = None) -> PixelNearest:
        """Take the training images (no model is needed)."""
        self.train = as_imageset(train, "train")
        return self

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """Dense (m, n) scores of :func:`pixel_attribution`.

        Raises:
            RuntimeError: before :meth:`fit`.
            ValueError: as :func:`pixel_attribution`.
        """
        if self.train is None:
            raise RuntimeError("call fit(train) before scoring generated images")
        generated = as_imageset(generated, "generated")
        return Attribution(self.method, len(self.train), pixel_attribution(self.train, generated, self.k),
                           config={"method": "pixel", "k": self.k, "train": self.train.fingerprint(),
                                   "generated": generated.fingerprint()})
