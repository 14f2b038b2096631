"""Top-k removal: drop a generated sample's k highest-scored training images, retrain, and see how much
its loss rises, against dropping k random images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from gmval.attribution import Attribution
from gmval.counterfactual.retraining import SubsetTrainer
from gmval.images import ImageSet


def _top_k(row: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # Ties (e.g. the zeros of every non-contributor) are broken at random, not by index,
    # so a k beyond a method's contributors removes random images rather than low indices.
    jitter = rng.permutation(len(row))
    order = np.lexsort((jitter, -row))
    return order[:k]


def retrain_without_topk(trainer: SubsetTrainer, methods: Mapping[str, Attribution], generated: ImageSet,
                         samples: Sequence[int], ks: Sequence[int], draws: int = 32, loss_seed: int = 0,
                         seed: int = 0, train_seed: int | None = None) -> pd.DataFrame:
    """Remove each sample's top-k scored training images, retrain, and measure its loss change.

    For every generated sample j in ``samples``, every k in ``ks`` and every method (plus
    ``"random"``: k training images drawn from ``[seed, j, k]``), one model is trained on the
    full set minus those k images, with the full model's recipe and seed, and the change of
    sample j's loss against the full model is recorded. A faithful method raises the loss
    more than random removal. Removal is per sample (removing the union over samples would
    mix every sample's contributors into each measurement).

    Cost: ``len(samples) × len(ks) × (len(methods) + 1)`` retrainings on ~n images each
    (every one cached, like :meth:`SubsetTrainer.fit`).

    Args:
        trainer: the recipe and the full training set.
        methods: name -> the method's attribution of ``generated`` on the trainer's training set.
        generated: the generated samples (drawn from the full model).
        samples: positions in ``generated`` of the samples to test.
        ks: numbers of training images removed, each in 1..n-1.
        draws / loss_seed: the loss's Monte-Carlo draws and noise seed.
        seed: seeds the random removal and the tie-breaking of scores.
        train_seed: training seed of every model (default: the trainer's first).

    Returns:
        One row per (sample, k, method): ``sample``, ``k``, ``method``, ``loss_full``,
        ``loss_removed``, ``delta`` (removed − full; positive = the sample got harder).

    Raises:
        ValueError: for a k outside 1..n-1, a sample outside the generated set, a method
            name ``"random"``, or an attribution of other generated or training images.
    """
    n, m = len(trainer.train), len(generated)
    train_seed = trainer.seeds[0] if train_seed is None else train_seed
    for k in ks:
        if not 1 <= int(k) <= n - 1:
            raise ValueError(f"k={k} must be between 1 and n-1 = {n - 1} (the training set has {n} images)")
    for j in samples:
        if not 0 <= int(j) < m:
            raise ValueError(f"sample {j} is outside the {m} generated images")
    if "random" in methods:
        raise ValueError("'random' is the built-in baseline; give the method another name")
    scores = {}
    for name, attribution in methods.items():
        if (attribution.n_generated, attribution.n_train) != (m, n):
            raise ValueError(f"{name!r} scores {attribution.n_train} training images for {attribution.n_generated} "
                             f"generated ones, expected {n} for {m}")
        scores[name] = attribution.matrix()
    full = trainer.full_mask()
    base = trainer.model_loss(full, train_seed, generated, draws, loss_seed)
    cases, masks = [], []
    for j in samples:
        j = int(j)
        for k in ks:
            k = int(k)
            removals = {name: _top_k(sc[j], k, np.random.default_rng([seed, j, k, 1])) for name, sc in scores.items()}
            removals["random"] = np.random.default_rng([seed, j, k, 0]).choice(n, size=k, replace=False)
            for name, drop in removals.items():
                mask = full.copy()
                mask[drop] = False
                cases.append((j, k, name))
                masks.append(mask)
    losses = trainer.model_losses([(mask, train_seed) for mask in masks], generated, draws, loss_seed)
    return pd.DataFrame([{"sample": j, "k": k, "method": name, "loss_full": float(base[j]),
                          "loss_removed": float(loss[j]), "delta": float(loss[j] - base[j])}
                         for (j, k, name), loss in zip(cases, losses, strict=True)])


def removal_summary(removal: pd.DataFrame) -> pd.DataFrame:
    """Per (method, k): the ``mean`` (as ``ours``), ``median``, ``min`` and ``max`` loss change of a removal table."""
    return (removal.groupby(["method", "k"])["delta"].agg(["mean", "median", "min", "max"]).reset_index()
            .rename(columns={"mean": "ours"}))
