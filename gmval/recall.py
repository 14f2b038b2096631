"""Recall phase (paper Sec. 3.1): the K nearest training embeddings of each generated one.

``flat`` is exact search by chunked matrix products in torch (:class:`ExactIndex`; on
CUDA when present): on a 2-core CPU it is 4x faster than faiss's ``IndexFlatL2`` at K in
the hundreds. ``pq`` (product quantisation, the paper's
choice) and ``ivfpq`` (inverted file + PQ, for millions of vectors) are faiss's
approximate indexes, and :func:`recall_at_k` measures how many of the exact neighbours
they return.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gmval.component import default_device

IndexKind = Literal["flat", "pq", "ivfpq"]

#: Bytes of the (queries x database) score block formed at once by exact search.
SCORE_BUDGET = 256 * 2**20


class ExactIndex:
    """Exact squared-L2 k-NN over vectors appended in chunks (a streamable ``IndexFlatL2``).

    Chunks are kept as added and searched one after another, so the database is never
    copied into one block and a search's memory is one (queries x chunk) score block.
    Scores are ``|q|^2 + |b|^2 - 2 q.b`` by matrix product, then a top-k per chunk and
    a merge; the k kept are sorted by (distance, index), so ties go to the lower index
    whatever the chunking. In float32 the expanded form is exact to ~1e-6 of a squared
    distance between unit vectors (an exact copy scores ~1e-7, not 0).

    Args:
        dim: vector dimension.
        device: where the database lives and products run; ``None`` picks CUDA when present.
    """

    def __init__(self, dim: int, device: str | torch.device | None = None) -> None:
        self.d = dim
        self.device = torch.device(device) if device is not None else default_device()
        self._chunks: list[tuple[torch.Tensor, torch.Tensor]] = []   # (vectors, squared norms)

    @property
    def ntotal(self) -> int:
        return sum(len(x) for x, _ in self._chunks)

    def add(self, x: np.ndarray) -> None:
        """Append vectors (n, d)."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"exact index: vectors must be (n, {self.d}), got {x.shape}")
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        self._chunks.append((t, t.square().sum(1)))

    @torch.inference_mode()
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances and indices of the ``k`` nearest, (m, k) each, nearest first."""
        q_all = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32)).to(self.device)
        widest = max(len(x) for x, _ in self._chunks)
        rows = max(1, min(len(q_all), SCORE_BUDGET // (4 * widest)))
        dist = np.empty((len(q_all), k), dtype=np.float32)
        idx = np.empty((len(q_all), k), dtype=np.int64)
        for start in range(0, len(q_all), rows):
            q = q_all[start:start + rows]
            found_d, found_i, offset = [], [], 0
            for x, sq in self._chunks:
                scores = torch.addmm(sq[None], q, x.T, alpha=-2.0)
                top = scores.topk(min(k, len(x)), dim=1, largest=False, sorted=False)
                found_d.append(top.values)
                found_i.append(top.indices + offset)
                offset += len(x)
            d_all, i_all = torch.cat(found_d, dim=1), torch.cat(found_i, dim=1)
            if d_all.shape[1] > k:
                keep = d_all.topk(k, dim=1, largest=False, sorted=False).indices
                d_all, i_all = d_all.gather(1, keep), i_all.gather(1, keep)
            i_all, order = i_all.sort(dim=1)
            d_all = (d_all.gather(1, order) + q.square().sum(1, keepdim=True)).clamp_(min=0)
            best = d_all.argsort(dim=1, stable=True)
            dist[start:start + len(q)] = d_all.gather(1, best).cpu().numpy()
            idx[start:start + len(q)] = i_all.gather(1, best).cpu().numpy()
        return dist, idx


@dataclass(frozen=True)
class RecallConfig:
    """How the training embeddings are indexed.

    Attributes:
        index: ``flat`` (exact), ``pq`` or ``ivfpq``.
        m: PQ sub-quantisers; must divide the embedding dimension.
        nbits: bits per sub-quantiser code (256 centroids at 8).
        nlist: IVF cells; ``None`` picks 4*sqrt(n) (faiss's guidance: 4-16 sqrt(n)).
        nprobe: IVF cells visited per query.
        coarse: IVF's coarse quantiser: ``"flat"`` (exact assignment) or ``"hnsw"`` (an HNSW
            graph over the cells: assignment in O(log nlist), for tens of thousands of
            cells and 10^7 vectors).
        refine: 0, or keep ``refine * K`` PQ candidates and re-rank them by exact distances on
            float16 copies of the vectors (faiss ``IndexRefine``; 2 bytes per dimension per vector).
        train_samples: at most this many vectors (seeded subset) train the quantisers.
        seed: seed of that subset and of faiss's k-means.
    """

    index: IndexKind = "flat"
    m: int = 16
    nbits: int = 8
    nlist: int | None = None
    nprobe: int = 32
    coarse: str = "flat"
    refine: int = 0
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
        if spec.get("coarse", "flat") not in ("flat", "hnsw"):
            raise ValueError(f"unknown coarse quantiser {spec['coarse']!r}; use 'flat' or 'hnsw'")
        if spec.get("refine", 0) < 0:
            raise ValueError(f"refine must be >= 0, got {spec['refine']}")
        return cls(**spec)


class RecallIndex:
    """An index over training embeddings: :class:`ExactIndex` (``flat``) or a faiss PQ index.

    Args:
        config: the index settings.
        device: where exact search runs (faiss indexes run on the CPU).
    """

    def __init__(self, config: RecallConfig, device: str | torch.device | None = None) -> None:
        self.config = config
        self.device = device
        self.index: Any = None

    @property
    def exact(self) -> bool:
        """Exact search, which is rebuilt from the embeddings in no time rather than stored."""
        return self.config.index == "flat"

    def build(self, embeddings: np.ndarray) -> RecallIndex:
        """Train (for PQ/IVF) and fill the index with ``embeddings`` (n, d)."""
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = x.shape
        cfg = self.config
        if cfg.index == "flat":
            index: Any = ExactIndex(d, self.device)
        else:
            import faiss

            if d % cfg.m:
                raise ValueError(f"recall: PQ m={cfg.m} must divide the embedding dimension {d}")
            if cfg.index == "pq":
                base = faiss.IndexPQ(d, cfg.m, cfg.nbits)
            else:
                nlist = cfg.nlist or max(1, int(4 * math.sqrt(n)))
                if cfg.coarse == "hnsw":
                    # faiss searches the graph with max(efSearch, nprobe) candidates, so a small
                    # efSearch keeps add()'s one-cell assignments cheap without starving search.
                    quantizer = faiss.IndexHNSWFlat(d, 32)
                    quantizer.hnsw.efSearch = 64
                else:
                    quantizer = faiss.IndexFlatL2(d)
                base = faiss.IndexIVFPQ(quantizer, d, nlist, cfg.m, cfg.nbits)
                if cfg.coarse == "hnsw":
                    base.quantizer_trains_alone = 2  # k-means on exact assignment, then centroids into the graph
                base.nprobe = min(cfg.nprobe, nlist)
                base.cp.seed = cfg.seed
            base.pq.cp.seed = cfg.seed
            index = base
            if cfg.refine:
                index = faiss.IndexRefine(base, faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16))
                index.k_factor = float(cfg.refine)
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
        """Write a faiss index (not an exact one: see :attr:`exact`)."""
        import faiss

        if self.exact:
            raise TypeError("an exact index is rebuilt from the embeddings, not saved")
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, config: RecallConfig, path: Path) -> RecallIndex:
        import faiss

        obj = cls(config)
        obj.index = faiss.read_index(str(path))
        if config.index == "ivfpq":
            ivf = faiss.extract_index_ivf(obj.index)
            ivf.nprobe = min(config.nprobe, ivf.nlist)
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
