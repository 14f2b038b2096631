"""Quality models: q_j in [0, 1] for each generated image (paper Sec. 3.2, Eq. 6).

Each model returns a raw score in its own units (:meth:`QualityModel.raw`) and a
documented, fixed, monotone map to [0, 1] (:meth:`QualityModel.normalise`), so that q
means the same thing across runs and does not depend on the other images scored.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from gmval.component import Component


class QualityModel(Component):
    """Scores generated images; higher q means better quality.

    Attributes:
        needs_embeddings: :meth:`raw` uses the recall embeddings (and :meth:`fit` the
            training embeddings) instead of pixels.
    """

    name = "quality"
    needs_embeddings: bool = False

    def fit(self, train_embeddings: np.ndarray) -> None:  # noqa: B027 - most models need no reference
        """Receive the training-set embeddings (only reference-based models use them)."""

    @abstractmethod
    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        """uint8 (B, C, H, W) [and their embeddings (B, D)] -> raw scores (B,) float64."""

    @abstractmethod
    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores -> q in [0, 1] (NaN stays NaN so that the valuator can report it)."""

    @torch.inference_mode()
    def raw_of(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        """Batched :meth:`raw`."""
        out = []
        for i in range(0, len(images), self.batch_size):
            emb = None if embeddings is None else embeddings[i:i + self.batch_size]
            out.append(np.asarray(self.raw(images[i:i + self.batch_size], emb), dtype=np.float64))
        return np.concatenate(out)


class NoQuality(QualityModel):
    """q = 1 for every image: Eq. 4 without calibration."""

    name = "none"

    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        return np.ones(len(images))

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64)
