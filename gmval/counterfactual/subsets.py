"""The counterfactual study's training set and the random subsets every model is retrained on."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from gmval.data import subsample
from gmval.data.curation import stratified_counts
from gmval.images import ImageSet


def random_subsets(n: int, n_subsets: int, fraction: float = 0.5, seed: int = 0,
                   labels: np.ndarray | None = None) -> np.ndarray:
    """Boolean masks of random training subsets, each of exactly ``round(fraction * n)`` images.

    Subset ``s`` is drawn from its own generator seeded ``[seed, s]``, so the first 32 subsets
    of a 64-subset run are the 32 subsets of a 32-subset run (and their models are reused).

    Args:
        n: training-set size.
        n_subsets: how many subsets.
        fraction: share of the training set in each subset (D-TRAK: α = 0.5).
        seed: seeds the draws.
        labels: optional (n,) class labels; each subset then keeps the class proportions
            (largest-remainder rounding), as D-TRAK's stratified subsets do.

    Returns:
        (n_subsets, n) bool array; row s marks the images in subset s.

    Raises:
        ValueError: for n < 2, n_subsets < 1, a fraction outside (0, 1) or one that gives an
            empty or full subset, or labels of the wrong shape.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 to draw proper subsets, got {n}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    size = round(fraction * n)
    if not 0 < size < n:
        raise ValueError(f"fraction {fraction} of {n} images gives a subset of {size}; it must be in 1..{n - 1}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels have shape {labels.shape}, expected ({n},)")
        counts = stratified_counts(labels, size)
        members = {c: np.flatnonzero(labels == c) for c in counts}
    masks = np.zeros((n_subsets, n), dtype=bool)
    for s in range(n_subsets):
        rng = np.random.default_rng([seed, s])
        if labels is None:
            masks[s, rng.choice(n, size=size, replace=False)] = True
        else:
            for c, k in counts.items():
                masks[s, rng.choice(members[c], size=k, replace=False)] = True
    return masks


def mask_digest(mask: np.ndarray) -> str:
    """16 hex digits identifying a boolean training mask (its length included)."""
    mask = np.asarray(mask, dtype=bool)
    h = hashlib.sha256(str(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


def training_set(settings: Mapping[str, Any]) -> ImageSet:
    """The small training set of a ``counterfactual`` profile entry (stratified subsample of MNIST train)."""
    from gmval.models.zoo import load_split

    full = load_split(settings["dataset"], "train")
    return subsample(full, settings["n_train"], seed=settings["seed"], stratified=True)
