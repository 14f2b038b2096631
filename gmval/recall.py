"""Recall phase (paper Sec. 3.1): the K nearest training embeddings of each generated one.

Backed by faiss: ``flat`` is exact search; ``pq`` (product quantisation, the paper's
choice) and ``ivfpq`` (inverted file + PQ, for millions of vectors) are approximate,
and :func:`recall_at_k` measures how many of the exact neighbours they return.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

IndexKind = Literal["flat", "pq", "ivfpq"]


@dataclass(frozen=True)
class RecallConfig:
    """How the training embeddings are indexed.

    Attributes:
        index: ``flat`` (exact), ``pq`` or ``ivfpq``.
        m: PQ sub-quantisers; must divide the embedding dimension.
        nbits: bits per sub-quantiser code (256 centroids at 8).
        nlist: IVF cells; ``None`` picks 4*sqrt(n) (faiss's guidance: 4-16 sqrt(n)).
        nprobe: IVF cells visited per query.
        train_samples: at most this many vectors (seeded subset) train the quantisers.
        seed: seed of that subset and of faiss's k-means.
    """

    index: IndexKind = "flat"
    m: int = 16
    nbits: int = 8
    nlist: int | None = None
    nprobe: int = 32
    train_samples: int = 100_000
    seed: int = 0

    def params(self) -> dict[str, Any]:
        """Parameters that change search results (all of them for approximate indexes)."""
        return {"index": "flat"} if self.index == "flat" else asdict(self)

    @classmethod
    def parse(cls, spec: RecallConfig | str | dict[str, Any] | None) -> RecallConfig:
        """Accept a config, an index name, or a dict of fields."""
        if spec is None:
            return cls()
        if isinstance(spec, RecallConfig):
            return spec
        if isinstance(spec, str):
            spec = {"index": spec}
        if spec.get("index", "flat") not in ("flat", "pq", "ivfpq"):
            raise ValueError(f"unknown recall index {spec['index']!r}; use 'flat', 'pq' or 'ivfpq'")
        return cls(**spec)


class RecallIndex:
    """A faiss index over training embeddings.

    Args:
        config: the index settings.
    """

    def __init__(self, config: RecallConfig) -> None:
        self.config = config
        self.index: Any = None

    def build(self, embeddings: np.ndarray) -> RecallIndex:
        """Train (for PQ/IVF) and fill the index with ``embeddings`` (n, d)."""
        import faiss

        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = x.shape
        cfg = self.config
        if cfg.index == "flat":
            index = faiss.IndexFlatL2(d)
        else:
            if d % cfg.m:
                raise ValueError(f"recall: PQ m={cfg.m} must divide the embedding dimension {d}")
            if cfg.index == "pq":
                index = faiss.IndexPQ(d, cfg.m, cfg.nbits)
            else:
                nlist = cfg.nlist or max(1, int(4 * math.sqrt(n)))
                index = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, nlist, cfg.m, cfg.nbits)
                index.nprobe = min(cfg.nprobe, nlist)
                index.cp.seed = cfg.seed
            index.pq.cp.seed = cfg.seed
            centroids = 2 ** cfg.nbits
            if n < centroids:
                raise ValueError(f"recall: {n} training vectors cannot train a PQ with nbits={cfg.nbits} "
                                 f"({centroids} centroids); lower nbits or use index='flat'")
            rng = np.random.default_rng(cfg.seed)
            sample = x if n <= cfg.train_samples else x[np.sort(rng.choice(n, cfg.train_samples, replace=False))]
            index.train(sample)
        index.add(x)
        self.index = index
        return self

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared L2 distances (approximate for PQ) and indices of the ``k`` nearest, (m, k) each.

        Raises:
            ValueError: if ``k`` exceeds the indexed set, or an IVF search finds fewer than
                ``k`` neighbours (raise ``nprobe``).
        """
        if self.index is None:
            raise RuntimeError("recall index is not built")
        if k > self.ntotal:
            raise ValueError(f"recall_k={k} exceeds the {self.ntotal} indexed training images")
        dist, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        missing = int((idx < 0).any(axis=1).sum())
        if missing:
            raise ValueError(f"recall: {missing} queries found fewer than {k} neighbours "
                             f"(nprobe={self.config.nprobe} of the IVF cells); raise nprobe")
        return dist, idx.astype(np.int64)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, config: RecallConfig, path: Path) -> RecallIndex:
        import faiss

        obj = cls(config)
        obj.index = faiss.read_index(str(path))
        if config.index == "ivfpq":
            obj.index.nprobe = min(config.nprobe, obj.index.nlist)
        return obj


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-K neighbours that the approximate search also returned.

    Args:
        approx: (m, K) indices from an approximate index.
        exact: (m, K) indices from exact search.
    """
    if approx.shape != exact.shape:
        raise ValueError(f"shapes differ: {approx.shape} vs {exact.shape}")
    hits = [len(np.intersect1d(a, e, assume_unique=True)) for a, e in zip(approx, exact)]
    return float(np.mean(hits) / exact.shape[1])
