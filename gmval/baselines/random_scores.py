"""Random scores: independent standard-normal scores for every (generated, training) pair.

The control of the counterfactual study: a method that predicts nothing, whose LDS is 0
up to its interval.
"""

from __future__ import annotations

import numpy as np
import torch

from gmval.attribution import Attribution
from gmval.images import ImageSet, as_imageset


class RandomScores:
    """Seeded standard-normal scores as an :class:`~gmval.attribution.Attributor`.

    Args:
        seed: seeds the (m, n) draw.
    """

    method = "random-scores"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.n_train: int | None = None

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray, model: None = None) -> RandomScores:
        """Take the training set (only its size matters)."""
        self.n_train = len(as_imageset(train, "train"))
        return self

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """(m, n) scores from ``np.random.default_rng(seed)``.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.n_train is None:
            raise RuntimeError("call fit(train) before scoring generated images")
        m = len(as_imageset(generated, "generated"))
        scores = np.random.default_rng(self.seed).standard_normal((m, self.n_train))
        return Attribution(self.method, self.n_train, scores, config={"method": "random-scores", "seed": self.seed})
