"""Realism score (Kynkäänniemi et al., NeurIPS 2019) in the recall embedding space.

Each real (training) embedding phi_i gets the radius r_i of the ball reaching its k-th
nearest real neighbour. The realism of a generated embedding g is

    R(g) = max_i r_i / ||g - phi_i||,

so R >= 1 exactly when g falls inside some real sample's k-NN ball. As in the original
work, the half of the real balls with the largest radii is dropped (outliers have huge
balls that would call anything realistic). It needs no weights beyond the encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gmval.quality.base import QualityModel


class RealismQuality(QualityModel):
    """q = min(R, 1): 1 inside the real manifold estimate, the fraction of the way there outside.

    Args:
        k: neighbour rank defining each real ball (the original uses 3).
        reference_samples: at most this many training embeddings (seeded subset) form the
            reference; the score's cost is linear in it.
        seed: subset seed.
    """

    name = "realism"
    needs_embeddings = True

    def __init__(self, k: int = 3, reference_samples: int = 10_000, seed: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.k, self.reference_samples, self.seed = k, reference_samples, seed
        self.reference: torch.Tensor | None = None
        self.radii: torch.Tensor | None = None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "k": self.k, "reference_samples": self.reference_samples, "seed": self.seed}

    def fit(self, train_embeddings: np.ndarray) -> None:
        import faiss

        x = np.ascontiguousarray(train_embeddings, dtype=np.float32)
        n = len(x)
        if n <= self.k:
            raise ValueError(f"realism: needs more than k={self.k} training images, got {n}")
        if n > self.reference_samples:
            rng = np.random.default_rng(self.seed)
            x = x[np.sort(rng.choice(n, self.reference_samples, replace=False))]
        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x)
        dist, _ = index.search(x, self.k + 1)  # the first neighbour is the point itself
        radii = np.sqrt(np.maximum(dist[:, self.k], 0.0))
        keep = radii <= np.median(radii)
        self.reference = torch.from_numpy(x[keep])
        self.radii = torch.from_numpy(radii[keep])

    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        if self.reference is None or self.radii is None:
            raise RuntimeError("realism: call fit(train_embeddings) first")
        if embeddings is None:
            raise ValueError("realism scores embeddings; none were given")
        g = torch.as_tensor(embeddings, dtype=torch.float32)
        dist = torch.cdist(g, self.reference).clamp_min_(1e-12)
        return (self.radii[None, :] / dist).amax(dim=1).double().numpy()

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return np.minimum(np.asarray(raw, dtype=np.float64), 1.0)
