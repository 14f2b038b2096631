"""The value formula: Eq. 6 for each (generated, contributor) pair, then Eq. 5 per training image.

For generated image j with top-k contributors P_j, distances d_ij and quality q_j:

    V(x_i, x̂_j) = q_j * exp(-d_ij / T) / sum_{i' in P_j} exp(-d_i'j / T)   for i in P_j, else 0
    phi_i = sum_j V(x_i, x̂_j)

The paper writes exp(-d_ij), i.e. T = 1, and is silent on the units of d. gmval keeps
T = 1 as the default, defines every distance on a bounded, size-independent scale (see
``gmval.distances``), and offers ``temperature="auto"`` (T = median of the kept
distances) so that contributions depend only on relative distances. Subtracting each
row's minimum before exp is exact for this ratio and avoids the underflow that raw
distances cause (exp(-d) is 0 in float64 for d > ~745).
"""

from __future__ import annotations

import numpy as np

Temperature = float | str


def resolve_temperature(temperature: Temperature, distances: np.ndarray) -> float:
    """The T of Eq. 6: a positive number, or ``"auto"`` for the median kept distance."""
    if isinstance(temperature, str):
        if temperature != "auto":
            raise ValueError(f"temperature must be a positive number or 'auto', got {temperature!r}")
        t = float(np.median(distances))
        return t if t > 0 else 1.0
    t = float(temperature)
    if not t > 0 or not np.isfinite(t):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return t


def contribution_weights(distances: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """exp(-d/T) normalised over each row's contributors (the softmax of Eq. 4 restricted to P_j).

    Args:
        distances: (m, k) distances of each generated image to its contributors.
        temperature: T > 0.

    Raises:
        ValueError: on NaN or infinite distances (naming how many rows are affected).
    """
    d = np.asarray(distances, dtype=np.float64)
    bad = ~np.isfinite(d)
    if bad.any():
        raise ValueError(f"{int(bad.any(axis=1).sum())} generated images have non-finite distances")
    z = -(d - d.min(axis=1, keepdims=True)) / temperature
    w = np.exp(z)
    return w / w.sum(axis=1, keepdims=True)


def contributions(distances: np.ndarray, quality: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Eq. 6: q_j times the contribution weights, shape (m, k); row j sums to q_j."""
    q = np.asarray(quality, dtype=np.float64)
    if q.shape != (len(distances),):
        raise ValueError(f"quality has shape {q.shape}, expected ({len(distances)},)")
    bad = np.flatnonzero(~np.isfinite(q))
    if len(bad):  # NaN would spread through every value it touches
        raise ValueError(f"quality has {len(bad)} NaN or infinite scores (generated rows {bad[:10].tolist()})")
    return q[:, None] * contribution_weights(distances, temperature)


def data_values(contributors: np.ndarray, contribution: np.ndarray, n_train: int) -> np.ndarray:
    """Eq. 5: phi_i = sum over generated images of the contributions of training image i.

    Args:
        contributors: (m, k) training indices.
        contribution: (m, k) Eq. 6 contributions.
        n_train: number of training images (length of the result).
    """
    return np.bincount(np.asarray(contributors).ravel(), weights=np.asarray(contribution).ravel(),
                       minlength=n_train)
