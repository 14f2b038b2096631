"""Recall phase (paper Sec. 3.1): the K nearest training embeddings of each generated one.

``flat`` is exact search by chunked matrix products in torch (:class:`ExactIndex`; on
CUDA when present): on a 2-core CPU it is 4x faster than faiss's ``IndexFlatL2`` at K in
the hundreds with float32 products, and 2x faster again where bf16 matrix units select
the candidates that float32 then rescores. ``pq`` (product quantisation, the paper's
choice), ``ivfpq`` (inverted file + PQ, for millions of vectors) and ``hnsw`` (a
navigable small-world graph over 8-bit scalar-quantised vectors) are faiss's approximate
indexes, and :func:`recall_at_k` measures how many of the exact neighbours they return.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from gmval.component import default_device
from gmval.precision import resolve_precision

IndexKind = Literal["flat", "pq", "ivfpq", "hnsw"]
_KINDS: tuple[str, ...] = get_args(IndexKind)
#: Fields that only one family of approximate index reads.
_PQ_FIELDS = ("m", "nbits", "nlist", "nprobe", "coarse")
_HNSW_FIELDS = ("hnsw_m", "ef_construction", "ef_search")

#: Bytes of the (queries x database) score block formed at once by exact search.
SCORE_BUDGET = 256 * 2**20
#: Candidate rows rescored per gathered block (x dim x 4 bytes: ~5 MB at 1,280 dimensions).
RESCORE_ROWS = 1024


class ExactIndex:
    """Exact squared-L2 k-NN over vectors appended in chunks (a streamable ``IndexFlatL2``).

    Chunks are kept as added and searched one after another, so the database is never
    copied into one block and a search's memory is one (queries x chunk) score block.
    A search first *selects* candidates by matrix product, then *rescores* them by direct
    differences ``sum((x - q)^2)`` in float32, so an exact copy scores 0 and the distances
    are those No-Rerank uses (:class:`~gmval.distances.EmbeddingDistance`). The k kept are
    sorted by (distance, index): ties go to the lower index whatever the chunking.

    Selection precision:

    * ``"fp32"``: float32 products ``|b|^2 - 2 q.b``; the k best are the candidates.
    * ``"bf16"``: one bf16 product of augmented vectors ``[q, 1] . [b, -|b|^2/2]`` (no
      float32 pass over the scores) keeps ``screen * k`` candidates, all rescored. The
      product runs on bf16 matrix units (AMX: 4x the float32 product on the 2-core CPU).
      Its scores are off by up to ~20 bf16 ulps (oneDNN rounds partial sums), far below
      the gap between the k-th and the (2k)-th neighbour of real embeddings: on 3,000
      MNIST queries against 60,000 EfficientNet embeddings, screen 2 returned exactly the
      float32 top-100 (recall 1.0), and every returned distance is float32-exact anyway.
    * ``"auto"``: bf16 where the device has bf16 matrix units (:mod:`gmval.precision`).

    Args:
        dim: vector dimension.
        device: where the database lives and products run; ``None`` picks CUDA when present.
        precision: selection precision (above).
        screen: candidates per wanted neighbour for bf16 selection (>= 1).
    """

    def __init__(self, dim: int, device: str | torch.device | None = None, precision: str = "fp32",
                 screen: float = 2.0) -> None:
        if screen < 1:
            raise ValueError(f"screen must be >= 1, got {screen}")
        self.d = dim
        self.device = torch.device(device) if device is not None else default_device()
        self.precision = resolve_precision(precision, self.device)
        self.screen = screen
        # (vectors, squared norms, bf16 augmented vectors or None)
        self._chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    @property
    def ntotal(self) -> int:
        return sum(len(x) for x, _, _ in self._chunks)

    def _width(self) -> int:
        return -(-(self.d + 1) // 32) * 32   # the augmented width, padded for the matrix units

    def add(self, x: np.ndarray) -> None:
        """Append vectors (n, d)."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"exact index: vectors must be (n, {self.d}), got {x.shape}")
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        sq = t.square().sum(1)
        aug = None
        if self.precision == "bf16":
            aug = torch.zeros(len(t), self._width(), dtype=torch.bfloat16, device=self.device)
            aug[:, :self.d] = t
            aug[:, self.d] = -0.5 * sq
        self._chunks.append((t, sq, aug))

    def _select(self, q: torch.Tensor, k: int) -> torch.Tensor:
        """(rows, c) candidate indices of queries ``q``: the k (fp32) or screen*k (bf16) best."""
        want = k if self.precision == "fp32" else min(self.ntotal, math.ceil(self.screen * k))
        if self.precision == "bf16":
            qa = torch.zeros(len(q), self._width(), dtype=torch.bfloat16, device=q.device)
            qa[:, :self.d] = q
            qa[:, self.d] = 1.0
        found_d, found_i, offset = [], [], 0
        for x, sq, aug in self._chunks:
            c = min(want, len(x))
            if aug is None:   # |b|^2 - 2 q.b = |q - b|^2 - |q|^2
                top = torch.addmm(sq[None], q, x.T, alpha=-2.0).topk(c, dim=1, largest=False, sorted=False)
                found_d.append(top.values)
            else:             # q.b - |b|^2/2 = (|q|^2 - |q - b|^2) / 2, larger is nearer
                top = (qa @ aug.T).topk(c, dim=1, sorted=False)
                found_d.append(top.values.float().mul_(-2.0))
            found_i.append(top.indices + offset)
            offset += len(x)
        d_all, i_all = torch.cat(found_d, dim=1), torch.cat(found_i, dim=1)
        if d_all.shape[1] > want:
            i_all = i_all.gather(1, d_all.topk(want, dim=1, largest=False, sorted=False).indices)
        return i_all

    def _rescore(self, q: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Direct squared distances (rows, c) of queries ``q`` to their candidates ``idx``."""
        out = torch.empty(idx.shape, dtype=torch.float32, device=q.device)
        rows = max(1, RESCORE_ROWS // idx.shape[1])   # a gathered block stays in cache
        for start in range(0, len(q), rows):
            block = idx[start:start + rows]
            flat = block.reshape(-1)
            if len(self._chunks) == 1:
                gathered = self._chunks[0][0].index_select(0, flat)
            else:
                gathered, offset = torch.empty(len(flat), self.d, device=q.device), 0
                for x, _, _ in self._chunks:
                    inside = (flat >= offset) & (flat < offset + len(x))
                    gathered[inside] = x.index_select(0, flat[inside] - offset)
                    offset += len(x)
            diff = gathered.view(len(block), block.shape[1], self.d).sub_(q[start:start + rows, None])
            out[start:start + rows] = diff.square_().sum(2)
        return out

    @torch.inference_mode()
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances and indices of the ``k`` nearest, (m, k) each, nearest first."""
        q_all = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32)).to(self.device)
        widest = max(len(x) for x, _, _ in self._chunks)
        rows = max(1, min(len(q_all), SCORE_BUDGET // (4 * widest)))
        dist = np.empty((len(q_all), k), dtype=np.float32)
        idx = np.empty((len(q_all), k), dtype=np.int64)
        for start in range(0, len(q_all), rows):
            q = q_all[start:start + rows]
            i_all = self._select(q, k).sort(dim=1).values
            d_all = self._rescore(q, i_all)
            best = d_all.argsort(dim=1, stable=True)[:, :k]
            dist[start:start + len(q)] = d_all.gather(1, best).cpu().numpy()
            idx[start:start + len(q)] = i_all.gather(1, best).cpu().numpy()
        return dist, idx


@dataclass(frozen=True)
class RecallConfig:
    """How the training embeddings are indexed.

    Attributes:
        index: ``flat`` (exact), ``pq``, ``ivfpq`` or ``hnsw``.
        m: PQ sub-quantisers; must divide the embedding dimension.
        nbits: bits per sub-quantiser code (256 centroids at 8).
        nlist: IVF cells; ``None`` picks 4*sqrt(n) (faiss's guidance: 4-16 sqrt(n)).
        nprobe: IVF cells visited per query.
        coarse: IVF's coarse quantiser: ``"flat"`` (exact assignment) or ``"hnsw"`` (an HNSW
            graph over the cells: assignment in O(log nlist), for tens of thousands of
            cells and 10^7 vectors).
        hnsw_m: ``hnsw`` only: graph neighbours per vector (faiss's ``M``; 2M on the base layer).
        ef_construction: ``hnsw`` only: candidate list while linking a new vector (larger: a
            better graph, slower build).
        ef_search: ``hnsw`` only: candidate list of a search, the recall/time knob as
            ``nprobe`` is IVF's. At least ``max(1, refine) * K`` is used: faiss fills a
            longer result list from a shorter candidate list, so the K nearest would be
            those of the shorter list. The default 512 kept recall@100 at 0.915 or more from
            10^4 to 10^7 vectors in ``benchmarks/results/scaling_hnsw.csv`` (256: 0.893 at 10^6).
        refine: 0, or keep ``refine * K`` approximate candidates and re-rank them by exact
            distances on float16 copies of the vectors (faiss ``IndexRefine``; 2 bytes per
            dimension per vector).
        train_samples: at most this many vectors (seeded subset) train the quantisers.
        seed: seed of that subset and of faiss's k-means.
        precision: ``flat`` only: how :class:`ExactIndex` selects candidates (``"fp32"``,
            ``"bf16"`` or ``"auto"``); returned distances are float32-exact either way.
        screen: ``flat`` with bf16 selection only: candidates rescored per wanted neighbour.
    """

    index: IndexKind = "flat"
    m: int = 16
    nbits: int = 8
    nlist: int | None = None
    nprobe: int = 32
    coarse: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 512
    refine: int = 0
    train_samples: int = 100_000
    seed: int = 0
    precision: str = "auto"
    screen: float = 2.0

    def params(self, device: str | torch.device | None = None) -> dict[str, Any]:
        """Parameters that change search results, with ``precision`` resolved for ``device``;
        each kind names only the fields it reads, so a new kind's fields leave the keys of
        artefacts cached with another kind unchanged."""
        if self.index != "flat":
            unread = ("precision", "screen", *(_PQ_FIELDS if self.index == "hnsw" else _HNSW_FIELDS))
            return {k: v for k, v in asdict(self).items() if k not in unread}
        precision = resolve_precision(self.precision, torch.device(device) if device is not None else default_device())
        return {"index": "flat", "precision": precision, **({"screen": self.screen} if precision == "bf16" else {})}

    @classmethod
    def parse(cls, spec: RecallConfig | str | dict[str, Any] | None) -> RecallConfig:
        """Accept a config, an index name, or a dict of fields."""
        if spec is None:
            return cls()
        if isinstance(spec, RecallConfig):
            return spec
        if isinstance(spec, str):
            spec = {"index": spec}
        if spec.get("index", "flat") not in _KINDS:
            raise ValueError(f"unknown recall index {spec['index']!r}; use one of {', '.join(_KINDS)}")
        if spec.get("coarse", "flat") not in ("flat", "hnsw"):
            raise ValueError(f"unknown coarse quantiser {spec['coarse']!r}; use 'flat' or 'hnsw'")
        if spec.get("refine", 0) < 0:
            raise ValueError(f"refine must be >= 0, got {spec['refine']}")
        for name, low in (("hnsw_m", 2), ("ef_construction", 1), ("ef_search", 1)):
            if spec.get(name, low) < low:
                raise ValueError(f"{name} must be >= {low}, got {spec[name]}")
        resolve_precision(spec.get("precision", "auto"), torch.device("cpu"))   # validate early
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
        """Exact search: rebuilt from the embeddings in no time rather than stored, and its
        distances are float32-exact direct differences (No-Rerank reuses them)."""
        return self.config.index == "flat"

    def params(self) -> dict[str, Any]:
        """The config's :meth:`RecallConfig.params` on this index's device."""
        return self.config.params(self.device)

    def build(self, embeddings: np.ndarray) -> RecallIndex:
        """Train (for PQ/IVF) and fill the index with ``embeddings`` (n, d)."""
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = x.shape
        cfg = self.config
        if cfg.index == "flat":
            index: Any = ExactIndex(d, self.device, cfg.precision, cfg.screen)
        else:
            import faiss

            if cfg.index != "hnsw" and d % cfg.m:
                raise ValueError(f"recall: PQ m={cfg.m} must divide the embedding dimension {d}")
            if cfg.index == "hnsw":
                base = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, cfg.hnsw_m)
                base.hnsw.efConstruction = cfg.ef_construction
            elif cfg.index == "pq":
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
            if cfg.index != "hnsw":
                base.pq.cp.seed = cfg.seed
            index = base
            if cfg.refine:
                index = faiss.IndexRefine(base, faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16))
                index.k_factor = float(cfg.refine)
            centroids = 2 ** cfg.nbits
            if cfg.index != "hnsw" and n < centroids:
                raise ValueError(f"recall: {n} training vectors cannot train a PQ with nbits={cfg.nbits} "
                                 f"({centroids} centroids); lower nbits or use index='flat'")
            rng = np.random.default_rng(cfg.seed)
            sample = x if n <= cfg.train_samples else x[np.sort(rng.choice(n, cfg.train_samples, replace=False))]
            index.train(sample)
        index.add(x)
        self.index = index
        return self

    def set_nprobe(self, nprobe: int) -> RecallIndex:
        """Visit ``nprobe`` IVF cells per query from now on, without rebuilding (the index is
        the same for every nprobe, so a recall/time trade-off is measured on one build).

        Raises:
            ValueError: if the index is not an IVF index, or ``nprobe`` < 1.
        """
        import faiss

        self._retune("ivfpq", "nprobe", nprobe)
        if self.index is not None:
            ivf = faiss.extract_index_ivf(self.index)
            ivf.nprobe = min(nprobe, ivf.nlist)
        return self

    def set_ef_search(self, ef_search: int) -> RecallIndex:
        """Search an HNSW graph with ``ef_search`` candidates from now on, without rebuilding.

        Raises:
            ValueError: if the index is not an HNSW index, or ``ef_search`` < 1.
        """
        return self._retune("hnsw", "ef_search", ef_search)

    def _retune(self, kind: str, field: str, value: int) -> RecallIndex:
        """Set the search-time ``field`` of a ``kind`` index in the config, after checking both."""
        if self.config.index != kind:
            raise ValueError(f"{field} applies to an {kind} index, not {self.config.index!r}")
        if value < 1:
            raise ValueError(f"{field} must be >= 1, got {value}")
        self.config = replace(self.config, **{field: value})
        return self

    def _graph(self) -> Any:
        """The faiss HNSW index, inside its ``IndexRefine`` where there is one."""
        import faiss

        return faiss.downcast_index(self.index.base_index) if self.config.refine else self.index

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
        if self.config.index == "hnsw":
            self._graph().hnsw.efSearch = max(self.config.ef_search, k * max(1, self.config.refine))
        dist, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        missing = int((idx < 0).any(axis=1).sum())
        if missing:
            knob = (f"nprobe={self.config.nprobe} of the IVF cells; raise nprobe" if self.config.index == "ivfpq"
                    else f"{self.config.index} index")
            raise ValueError(f"recall: {missing} queries found fewer than {k} neighbours ({knob})")
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
            obj.set_nprobe(config.nprobe)
        return obj


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-K neighbours that the approximate search also returned.

    Args:
        approx: (m, K) indices from an approximate index.
        exact: (m, K) indices from exact search.
    """
    if approx.shape != exact.shape:
        raise ValueError(f"shapes differ: {approx.shape} vs {exact.shape}")
    hits = [len(np.intersect1d(a, e, assume_unique=True)) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits) / exact.shape[1])
