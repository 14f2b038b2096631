"""Re-ranking distances d_ij between a generated image and its recalled candidates.

Every distance is split into a per-image :meth:`Distance.features` (one forward pass
per image, cacheable) and a cheap :meth:`Distance.pairwise` on features, so re-ranking
m generated images against K candidates costs m + |unique candidates| forward passes,
not m*K. Deep distances of the LPIPS family are sums of squared differences of
(scaled) feature maps, so their features are those maps flattened and pre-scaled.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from gmval.component import Component


class Distance(Component):
    """A dissimilarity between images, computed from per-image features.

    Attributes:
        uses_embeddings: the distance is computed on the recall embeddings (No-Rerank);
            :meth:`features` is then never called.
        feature_dtype: dtype in which cached features are stored.
        cache_features: store training-image features on disk; cheap pixel features are
            recomputed per chunk instead of filling the disk.
    """

    name = "distance"
    uses_embeddings: bool = False
    feature_dtype: torch.dtype = torch.float32
    cache_features: bool = True

    @abstractmethod
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> per-image features (B, F) on CPU."""

    @abstractmethod
    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances between ``a`` (B, F) and each of its candidates ``b`` (B, K, F) -> (B, K)."""

    @torch.inference_mode()
    def features_of(self, images: torch.Tensor) -> torch.Tensor:
        """Batched :meth:`features` over many images, stored in :attr:`feature_dtype`."""
        return torch.cat([self.features(images[i:i + self.batch_size]).to(self.feature_dtype)
                          for i in range(0, len(images), self.batch_size)])

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance between paired uint8 batches ``x[i]`` and ``y[i]`` -> (B,), as in ``lpips``."""
        return self.pairwise(self.features(x).float(), self.features(y).float()[:, None])[:, 0]


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences of ``a`` (B, F) and each row of ``b`` (B, K, F) -> (B, K).

    Differences are taken directly rather than as |a|^2 + |b|^2 - 2ab: the expanded form
    loses float32 precision exactly where it matters, an exact copy no longer scoring 0.
    """
    return (b.float() - a.float()[:, None, :]).square_().sum(dim=2)


class EmbeddingDistance(Distance):
    """No-Rerank: Euclidean distance between recall embeddings (exact, even after PQ recall)."""

    name = "none"
    uses_embeddings = True

    def features(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the 'none' distance works on recall embeddings, not on images")

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(a, b).sqrt_()
