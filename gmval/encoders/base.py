"""Recall encoders: images -> embedding vectors searched by faiss."""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F

from gmval.component import Component
from gmval.images import ImageSet


class Encoder(Component):
    """Maps uint8 image batches to float32 embeddings of dimension :attr:`dim`.

    Recall compares embeddings with the Euclidean distance, so encoders whose
    embeddings are compared by angle (CLIP, CNN features) L2-normalise them.
    """

    name = "encoder"
    dim: int

    def fit(self, train: ImageSet) -> None:  # noqa: B027 - most encoders need no fitting
        """Fit on the training set before encoding (only data-dependent encoders, e.g. PCA)."""

    @abstractmethod
    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) on any device -> float32 (B, dim) on CPU."""

    @torch.inference_mode()
    def encode(self, images: ImageSet | torch.Tensor) -> torch.Tensor:
        """Encode a whole set in batches (no caching; the valuator caches)."""
        x = images.images if isinstance(images, ImageSet) else images
        return torch.cat([self.encode_batch(x[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size)])


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    return F.normalize(x.float(), dim=1, eps=1e-12)
