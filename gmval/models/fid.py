"""Fréchet distance between two sets of features (FID's formula, any feature space).

    FD = ||μ_a - μ_b||² + tr(Σ_a) + tr(Σ_b) - 2 tr((Σ_a Σ_b)^½)

The trace of the matrix square root is computed from symmetric eigendecompositions:
with S = Σ_a^½ (symmetric), Σ_a Σ_b is similar to S Σ_b S, which is symmetric positive
semi-definite, so tr((Σ_a Σ_b)^½) = Σ_i sqrt(λ_i(S Σ_b S)). Unlike ``scipy.linalg.sqrtm``
this never returns complex parts and is exact for identical sets (FD = 0 up to rounding).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from gmval.images import ImageSet
from gmval.models.classifier import Classifier


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(m)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` (N, D) and ``b`` (M, D).

    Raises:
        ValueError: if the feature sizes differ or a set has fewer than two rows.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature arrays must be (N, D) with the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each set needs at least two rows to have a covariance")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0.0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    # Rounding can leave a tiny negative number for identical sets; the distance is >= 0.
    return max(fd, 0.0)


def classifier_frechet_distance(classifier: Classifier, a: ImageSet, b: ImageSet) -> float:
    """Fréchet distance of two image sets in ``classifier``'s feature space."""
    return frechet_distance(classifier.embed(a), classifier.embed(b))


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 ``images`` blurred by a Gaussian of ``sigma`` pixels (kernel out to 3 sigma), rounded back to uint8.

    The FD of blurred real images gives a reader a scale for what a generator's FD means.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    out = gaussian_blur(images.float(), kernel_size=2 * radius + 1, sigma=sigma)
    return out.round().clamp(0, 255).to(torch.uint8)


def confident_mask(logits: np.ndarray, threshold: float) -> np.ndarray:
    """Which samples a classifier labels with max-softmax at least ``threshold``."""
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    return (torch.softmax(z, dim=1).max(dim=1).values >= threshold).numpy()
