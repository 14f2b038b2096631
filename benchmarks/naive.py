"""The straightforward reading of the paper's Algorithm 1, as the baseline of the engine benchmark.

One generated image at a time: encode it, find its K nearest training embeddings by
brute force over all of them (numpy), call the re-ranking distance once per
(generated, candidate) pair, as ``lpips(x, y)`` is used, recomputing both images'
features on every call, keep the k closest, and add Eq. 6's contributions to Eq. 5's sums.

It shares the valuator's components and their numerics (a distance's features pass
through its storage dtype, as the valuator's feature cache does), so that on the same
data it must return the same top-k contributors as :class:`gmval.valuator.Valuator`;
only the amount and batching of the work differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from gmval.distances import Distance
from gmval.encoders import Encoder
from gmval.quality import QualityModel

#: Timed stages, named as in ``Valuator.timings``.
STAGES = ("embed_generated", "recall", "rerank", "quality", "value")


@dataclass
class NaiveResult:
    """What :func:`naive_valuation` returns.

    Attributes:
        topk: (m, k) training indices of each generated image's contributors, nearest first.
        distances: (m, k) their re-ranking distances.
        quality: (m,) q_j.
        values: (n_train,) Eq. 5 data values.
        timings: seconds per stage, summed over the generated images.
    """

    topk: np.ndarray
    distances: np.ndarray
    quality: np.ndarray
    values: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


@torch.inference_mode()
def pair_distance(distance: Distance, x: torch.Tensor, y: torch.Tensor) -> float:
    """One distance-network call on a single (1, C, H, W) pair, both features computed afresh."""
    fx = distance.features(x).to(distance.feature_dtype).float()
    fy = distance.features(y).to(distance.feature_dtype).float()
    return float(distance.pairwise(fx, fy[:, None])[0, 0])


@torch.inference_mode()
def naive_valuation(encoder: Encoder, distance: Distance, quality: QualityModel, train_images: torch.Tensor,
                    train_embeddings: np.ndarray, generated: torch.Tensor, k: int, recall_k: int,
                    temperature: float = 1.0) -> NaiveResult:
    """Algorithm 1 one generated image and one candidate pair at a time.

    Args:
        encoder: the recall encoder (the one that embedded the training set).
        distance: re-ranking distance; one that ``uses_embeddings`` (No-Rerank) compares
            the recall embeddings, one candidate at a time.
        quality: quality model, already fitted to ``train_embeddings`` if it needs them.
        train_images: uint8 (n, C, H, W) training images.
        train_embeddings: (n, D) their recall embeddings.
        generated: uint8 (m, C, H, W) generated images.
        k: contributors kept per generated image.
        recall_k: candidates recalled before re-ranking.
        temperature: T in exp(-d/T) (Eq. 6).
    """
    m, n = len(generated), len(train_images)
    topk = np.empty((m, k), dtype=np.int64)
    kept = np.empty((m, k), dtype=np.float64)
    q_all = np.empty(m, dtype=np.float64)
    values = np.zeros(n, dtype=np.float64)
    timings = dict.fromkeys(STAGES, 0.0)
    for j in range(m):
        x = generated[j:j + 1]
        t0 = time.perf_counter()
        e = encoder.encode_batch(x).numpy()[0]
        t1 = time.perf_counter()
        cand = np.argsort(((train_embeddings - e) ** 2).sum(axis=1), kind="stable")[:recall_k]
        t2 = time.perf_counter()
        if distance.uses_embeddings:
            d = np.array([np.sqrt(((train_embeddings[c] - e) ** 2).sum()) for c in cand])
        else:
            d = np.array([pair_distance(distance, x, train_images[c:c + 1]) for c in cand])
        t3 = time.perf_counter()
        emb = torch.from_numpy(e[None]) if quality.needs_embeddings else None
        q = float(quality.normalise(np.asarray(quality.raw(x, emb), dtype=np.float64))[0])
        t4 = time.perf_counter()
        order = np.argsort(d, kind="stable")[:k]
        w = np.exp(-d[order] / temperature)  # Eq. 6 as printed: no max-shift, distances here are O(1)
        contrib = q * w / w.sum()
        np.add.at(values, cand[order], contrib)
        topk[j], kept[j], q_all[j] = cand[order], d[order], q
        t5 = time.perf_counter()
        for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            timings[stage] += dt
    return NaiveResult(topk, kept, q_all, values, timings)
