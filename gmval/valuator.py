"""GMValuator as a staged pipeline (paper Algorithm 1) with cached, resumable stages.

Stages, each an artefact keyed by everything it depends on:

1. ``embed``: recall embeddings of the training and generated sets (encoder).
2. ``index``: the faiss index of the training embeddings (recall config).
3. ``recall``: the K nearest training images of each generated image.
4. ``rerank``: the re-ranking distance of each generated image to its K candidates,
   from per-image features computed once (``train-features``, one row cache per training
   set, filled with the recalled images' rows as they are first needed).
5. ``quality``: q_j of each generated image.
6. value: top-k by distance, Eq. 6, Eq. 5 (cheap; recomputed every call, so k and the
   temperature can change without touching the stages above).

All stages stream in row chunks, so no (generated x training) matrix is ever formed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gmval import paths
from gmval.attribution import Attribution
from gmval.distances import Distance, create_distance
from gmval.encoders import Encoder, create_encoder
from gmval.images import ImageSet, as_imageset, conform, iter_chunks
from gmval.quality import QualityModel, create_quality_model
from gmval.recall import RecallConfig, RecallIndex
from gmval.stages import TimedStages
from gmval.store import Artifact, ArtifactStore, CacheError, RowCache, artefact_key, atomic_write_text
from gmval.value import Temperature, contribution_weights, data_values, resolve_temperature

#: Bytes of float32 candidate features gathered at once during re-ranking: a block that
#: stays in cache while it is differenced (256 MB blocks made re-ranking memory-bound,
#: 10x slower for 7,040-wide deep features).
GATHER_BLOCK = 4 * 2**20
#: The default recall encoder and re-ranking distance, chosen by ``benchmarks/bench_nearcopy.py``:
#: weight-free, and they put the source of a lightly perturbed copy first (memorisation audits)
#: where the EfficientNet-Lite0 / No-Rerank defaults before them did not.
DEFAULT_ENCODER, DEFAULT_DISTANCE = "thumbnail", "shift-l2"


@dataclass
class ValuationResult:
    """What a valuation returns.

    Attributes:
        values: one row per training image: ``train_index``, ``train_id``, [``train_label``],
            ``value`` (Eq. 5), ``n_generated`` (how many generated images it contributes to)
            and ``rank`` (1 = most valuable).
        contributors: one row per (generated image, contributor): ``generated_index``,
            ``generated_id``, [``generated_label``], ``rank`` (1 = nearest), ``train_index``,
            ``train_id``, [``train_label``], ``distance`` (d_ij), ``weight`` (the normalised
            exp(-d/T)), ``quality`` (q_j) and ``contribution`` (Eq. 6).
        timings: seconds spent per stage in this call (cache hits are near 0);
            ``distance_features`` is the part of ``rerank`` spent in the distance's network
            (features of the generated images and of newly recalled training images).
        config: the settings that produced the result.
    """

    values: pd.DataFrame
    contributors: pd.DataFrame
    timings: dict[str, float]
    config: dict[str, Any]

    @property
    def k(self) -> int:
        return int(self.config["k"])

    def topk_indices(self) -> np.ndarray:
        """(m, k) training indices of each generated image's contributors, nearest first."""
        return self.contributors["train_index"].to_numpy().reshape(-1, self.k)

    def attribution(self, column: str = "contribution") -> Attribution:
        """The valuation as an :class:`~gmval.attribution.Attribution`: each generated image's
        contributors, nearest first, scored by their Eq. 6 ``contribution``.

        Args:
            column: the contributors' column to score by; ``"weight"`` drops the quality
                calibration (q_j only rescales row j, which rank statistics ignore unless q_j = 0).

        Raises:
            ValueError: for a column the contributors table does not have.
        """
        if column not in self.contributors:
            raise ValueError(f"the contributors table has no column {column!r}")
        m, n = int(self.config["n_generated"]), int(self.config["n_train"])
        shape = (m, self.k)
        return Attribution("gmvaluator", n, self.contributors[column].to_numpy(dtype=np.float64).reshape(shape),
                           index=self.topk_indices().reshape(shape),
                           values=self.values.sort_values("train_index")["value"].to_numpy(dtype=np.float64),
                           timings=self.timings, config=self.config, detail=self)

    def top(self, generated_index: int) -> pd.DataFrame:
        """The contributor rows of one generated image."""
        return self.contributors[self.contributors["generated_index"] == generated_index]

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``values.csv``, ``contributors.csv`` and ``config.json`` atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {"values": out / "values.csv", "contributors": out / "contributors.csv",
                 "config": out / "config.json"}
        atomic_write_text(files["values"], self.values.to_csv(index=False))
        atomic_write_text(files["contributors"], self.contributors.to_csv(index=False))
        atomic_write_text(files["config"], json.dumps({"config": self.config, "timings": self.timings},
                                                      indent=1, default=str))
        return files


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a whole number >= 1, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _load_index(config: RecallConfig, art: Artifact) -> RecallIndex:
    try:
        return RecallIndex.load(config, art.file("index.faiss"))
    except Exception as exc:  # faiss reports a truncated or foreign file as a bare RuntimeError
        raise CacheError(f"index {art.file('index.faiss')} is unreadable ({exc}); delete {art.path} to recompute"
                         ) from exc


def _component(spec: Any, factory: Any, device: str | torch.device | None) -> Any:
    if isinstance(spec, str):
        return factory(spec, device=device)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return factory(spec[0], device=device, **spec[1])
    return spec


class Valuator(TimedStages):
    """GMValuator with swappable stages; an :class:`~gmval.attribution.Attributor` (:meth:`fit`, :meth:`score`).

    Args:
        encoder: recall encoder: a registered name, ``(name, kwargs)``, or an :class:`Encoder`.
        distance: re-ranking distance (``"none"`` = No-Rerank), same forms.
        quality: quality model for q_j (``"none"`` = no calibration), same forms.
        k: contributors kept per generated image (the paper's top-k).
        recall_k: candidates recalled before re-ranking; default ``max(2k, 100)`` capped at
            the training-set size.
        recall: ``"flat"`` (exact), faiss ``"pq"``, ``"ivfpq"`` or ``"hnsw"``, a dict or a :class:`RecallConfig`.
        temperature: T in exp(-d/T) (Eq. 6); ``"auto"`` uses the median kept distance.
        cache_dir: artefact folder; ``None`` disables caching.
        chunk_size: generated (and training) images per streamed chunk.
        progress: show tqdm bars.
        on_bad_quality: ``"raise"`` on NaN/inf/out-of-range quality scores, or ``"zero"`` to
            give those generated images q = 0 (with a warning naming them).
        device: device for components built from names.
    """

    method = "gmvaluator"

    def __init__(self, encoder: str | tuple[str, dict[str, Any]] | Encoder = DEFAULT_ENCODER,
                 distance: str | tuple[str, dict[str, Any]] | Distance = DEFAULT_DISTANCE,
                 quality: str | tuple[str, dict[str, Any]] | QualityModel = "none", *,
                 k: int = 30, recall_k: int | None = None,
                 recall: RecallConfig | str | dict[str, Any] | None = "flat",
                 temperature: Temperature = 1.0, cache_dir: str | Path | None = paths.CACHE,
                 chunk_size: int = 1024, progress: bool = True, on_bad_quality: str = "raise",
                 device: str | torch.device | None = None) -> None:
        self._train_emb: np.ndarray | None = None
        self.timings: dict[str, float] = {}
        self.encoder: Encoder = _component(encoder, create_encoder, device)
        self.distance: Distance = _component(distance, create_distance, device)
        self.quality = _component(quality, create_quality_model, device)
        k = positive_int("k", k)
        chunk_size = positive_int("chunk_size", chunk_size)
        if recall_k is not None:
            recall_k = positive_int("recall_k", recall_k)
        if recall_k is not None and recall_k < k:
            raise ValueError(f"recall_k={recall_k} must be >= k={k}")
        if on_bad_quality not in ("raise", "zero"):
            raise ValueError(f"on_bad_quality must be 'raise' or 'zero', got {on_bad_quality!r}")
        resolve_temperature(temperature, np.ones(1))  # validate early
        self.k, self._recall_k, self.temperature = k, recall_k, temperature
        self.recall_config = RecallConfig.parse(recall)
        self.store = ArtifactStore(cache_dir)
        self.chunk_size, self.progress, self.on_bad_quality = chunk_size, progress, on_bad_quality
        self.train: ImageSet | None = None
        self._train_emb_key = ""
        self._index: RecallIndex | None = None
        self._index_key = ""
        self._row_caches: dict[str, RowCache] = {}

    # ----------------------------------------------------------------- helpers

    def recall_k(self, n_train: int) -> int:
        """The number of recalled candidates for a training set of ``n_train`` images."""
        if self.k > n_train:
            raise ValueError(f"k={self.k} exceeds the training set ({n_train} images)")
        if self._recall_k is None:
            return min(n_train, max(2 * self.k, 100))
        if self._recall_k > n_train:
            raise ValueError(f"recall_k={self._recall_k} exceeds the training set ({n_train} images)")
        return self._recall_k

    def _require_fit(self) -> ImageSet:
        if self.train is None:
            raise RuntimeError("call fit(train) before valuing generated images")
        return self.train

    # ----------------------------------------------------------------- stages
    def embed(self, images: ImageSet, stage: str = "embed") -> tuple[np.ndarray, str]:
        """Recall embeddings of ``images`` (cached, resumable) and their artefact key."""
        params = {"encoder": self.encoder.params(), "images": images.fingerprint()}
        key = artefact_key("embed", params)
        with self._timed(stage):
            art = self.store.load("embed", params)
            if art is None:
                art = self._fill_embeddings(images, params)
            return np.asarray(art.array("embeddings", mmap=False)), key

    def _fill_embeddings(self, images: ImageSet, params: dict[str, Any]) -> Artifact:
        first = self.encoder.encode_batch(images.images[:1])
        with self.store.chunked("embed", params, {"embeddings": ((len(images), first.shape[1]), "float32")}
                                ) as writer, self._bar(len(images), f"embed {images.name}") as bar:
            bar.update(writer.done)
            for rows, chunk in iter_chunks(images.images, writer.pending(self.chunk_size)):
                emb = self.encoder.encode(chunk).numpy()
                if not np.isfinite(emb).all():
                    raise ValueError(f"encoder {self.encoder.name} produced non-finite embeddings for "
                                     f"{images.name} rows {rows.start}-{rows.stop}")
                writer.write(rows, embeddings=emb)
                bar.update(rows.stop - rows.start)
            return writer.finish()

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray, model: None = None) -> Valuator:
        """Encode and index the training set, and fit reference-based quality models (no model is needed)."""
        train = as_imageset(train, "train")
        self.train, self.timings = train, {}
        self.encoder.fit(train)
        self._train_emb, self._train_emb_key = self.embed(train, "embed_train")
        index = RecallIndex(self.recall_config, self.encoder.device)
        params = {"recall": index.params(), "embeddings": self._train_emb_key}
        self._index_key = artefact_key("index", params)
        with self._timed("index"), self.store.lock("index", params):
            art = None if index.exact else self.store.load("index", params)
            if art is not None:
                self._index = _load_index(self.recall_config, art)
            else:
                self._index = index.build(self._train_emb)
                if not index.exact:
                    self.store.save("index", params, extra=lambda d: index.save(d / "index.faiss"))
        self._fit_quality()
        return self

    @property
    def quality(self) -> QualityModel:
        """The quality model; one set after :meth:`fit` is fitted to the training embeddings at once."""
        return self._quality

    @quality.setter
    def quality(self, model: QualityModel) -> None:
        self._quality = model
        self._fit_quality()

    def _fit_quality(self) -> None:
        if self._quality.needs_embeddings and self._train_emb is not None:
            with self._timed("quality_fit"):
                self._quality.fit(self._train_emb)

    def recall(self, generated: ImageSet, gen_emb: np.ndarray, gen_key: str) -> tuple[np.ndarray, np.ndarray, str]:
        """(m, K) candidate training indices of each generated image, their squared recall
        distances (float32-exact for exact recall, PQ estimates otherwise) and the stage key."""
        train = self._require_fit()
        assert self._index is not None
        kk = self.recall_k(len(train))
        # version 2 stores the distances beside the candidates
        params = {"index": self._index_key, "queries": gen_key, "K": kk, "version": 2}
        with self._timed("recall"), self.store.lock("recall", params):
            art = self.store.load("recall", params)
            if art is None:
                cand = np.empty((len(generated), kk), dtype=np.int64)
                sq = np.empty((len(generated), kk), dtype=np.float32)
                with self._bar(len(generated), "recall") as bar:
                    for start in range(0, len(generated), self.chunk_size):
                        rows = slice(start, min(start + self.chunk_size, len(generated)))
                        sq[rows], cand[rows] = self._index.search(gen_emb[rows], kk)
                        bar.update(rows.stop - rows.start)
                art = self.store.save("recall", params, arrays={"candidates": cand, "distances": sq})
            return (np.asarray(art.array("candidates", mmap=False)), np.asarray(art.array("distances", mmap=False)),
                    artefact_key("recall", params))

    def rerank(self, generated: ImageSet, candidates: np.ndarray, recall_key: str,
               gen_emb: np.ndarray, recall_sq: np.ndarray) -> np.ndarray:
        """(m, K) re-ranking distances of each generated image to its candidates."""
        train = self._require_fit()
        assert self._index is not None
        params = {"distance": self.distance.params(), "generated": generated.fingerprint(), "recall": recall_key}
        with self._timed("rerank"):
            if self.distance.uses_embeddings and self._index.exact:
                # exact recall already measured these distances, as direct differences
                return np.sqrt(recall_sq)
            art = self.store.load("rerank", params)
            if art is not None:
                return np.asarray(art.array("distances", mmap=False))
            m, kk = candidates.shape
            train_feats: np.ndarray | None = None
            if self.distance.uses_embeddings:
                train_feats = self._train_emb
            elif self.distance.cache_features or train.lazy:
                # decoding lazy candidates is not cheap: each is decoded once, not once per use
                train_feats = self._train_features(train, candidates)
            with self.store.chunked("rerank", params, {"distances": ((m, kk), "float32")}) as writer, \
                    self._bar(m, f"rerank {self.distance.name}") as bar:
                bar.update(writer.done)
                source = generated.images if not self.distance.uses_embeddings else gen_emb
                for rows, chunk in iter_chunks(source, writer.pending(self.chunk_size)):
                    if self.distance.uses_embeddings:
                        a = torch.from_numpy(chunk)
                    else:
                        with self._timed("distance_features"):
                            a = self.distance.features_of(chunk).float()
                    d = self._distances(a, candidates[rows], train_feats).numpy()
                    if not np.isfinite(d).all():
                        raise ValueError(f"distance {self.distance.name} produced non-finite values for "
                                         f"generated rows {rows.start}-{rows.stop}")
                    writer.write(rows, distances=d)
                    bar.update(rows.stop - rows.start)
                return np.asarray(writer.finish().array("distances", mmap=False))

    def _distances(self, a: torch.Tensor, pos: np.ndarray, train_feats: np.ndarray | None) -> torch.Tensor:
        """Distances (rows, K) of features ``a`` to training candidates ``pos``, in cache-sized blocks.

        Candidates come from ``train_feats`` (rows of training features) or, when it is
        None, from the distance's features of the candidate images, computed here. A block
        holds whole rows of candidates or, when one row alone is wider than
        :data:`GATHER_BLOCK` (LPIPS: 100 x 32k floats), a slice of one row's candidates.
        """
        train = self._require_fit()
        n, kk = pos.shape
        width = train_feats.shape[1] if train_feats is not None else int(np.prod(train.shape))
        cands = min(kk, max(1, GATHER_BLOCK // (width * 4)))
        rows = max(1, GATHER_BLOCK // (kk * width * 4)) if cands == kk else 1
        feats = torch.from_numpy(train_feats) if train_feats is not None else None   # a view, not a copy
        idx_all = torch.from_numpy(np.ascontiguousarray(pos))
        out = torch.empty(pos.shape, dtype=torch.float32)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            for c0 in range(0, kk, cands):
                c1 = min(c0 + cands, kk)
                idx = idx_all[start:stop, c0:c1].reshape(-1)
                b = (feats.index_select(0, idx) if feats is not None else self.distance.features_of(train.images[idx]))
                out[start:stop, c0:c1] = self.distance.pairwise(a[start:stop],
                                                                b.float().view(stop - start, c1 - c0, -1))
        return out

    def _train_features(self, train: ImageSet, rows: np.ndarray) -> np.ndarray:
        """Distance features of the whole training set (memory-mapped), computed for ``rows``.

        One cache per (distance, training set): a row computed for one generated set is
        reused by every later one, whatever it recalls.
        """
        params = {"distance": self.distance.params(), "train": train.fingerprint()}
        key = artefact_key("train-features", params)
        if key not in self._row_caches:  # held, so that an uncached valuator reuses rows across calls
            width = self.distance.features(train.images[:1]).shape[1]
            self._row_caches[key] = self.store.rows("train-features", params, (len(train), width),
                                                    str(self.distance.feature_dtype).replace("torch.", ""))
        cache = self._row_caches[key]
        with (self._timed("distance_features"),
              self._bar(len(cache.missing(rows)), f"features {self.distance.name}") as bar):
            return cache.fill(rows,
                              lambda part: self.distance.features_of(train.images[torch.from_numpy(part)]).numpy(),
                              self.chunk_size, bar.update)

    def quality_scores(self, generated: ImageSet, gen_emb: np.ndarray, gen_key: str) -> np.ndarray:
        """q_j in [0, 1] for each generated image (raw scores cached)."""
        params: dict[str, Any] = {"quality": self.quality.params(), "generated": generated.fingerprint()}
        if self.quality.needs_embeddings:
            params |= {"embeddings": gen_key, "reference": self._train_emb_key}
        with self._timed("quality"), self.store.lock("quality", params):
            art = self.store.load("quality", params)
            if art is None:
                emb = torch.from_numpy(gen_emb) if self.quality.needs_embeddings else None
                raw = self.quality.raw_of(generated.images, emb)
                art = self.store.save("quality", params, arrays={"raw": raw})
            q = self.quality.normalise(np.asarray(art.array("raw", mmap=False)))
        bad = ~np.isfinite(q) | (q < 0) | (q > 1)
        if bad.any():
            names = ", ".join(map(str, generated.ids[bad][:10]))
            msg = (f"quality model {self.quality.name} gave {int(bad.sum())} generated images a score that is "
                   f"NaN, infinite or outside [0, 1] (ids: {names})")
            if self.on_bad_quality == "raise":
                raise ValueError(msg + "; pass on_bad_quality='zero' to give them q = 0")
            warnings.warn(msg + "; they get q = 0", stacklevel=2)
            q = np.where(bad, 0.0, q)
        return q

    # ----------------------------------------------------------------- value
    def value(self, generated: ImageSet | torch.Tensor | np.ndarray, k: int | None = None,
              temperature: Temperature | None = None) -> ValuationResult:
        """Value every training image by its contributions to ``generated`` (Eq. 5 and 6).

        Args:
            generated: the generated images; another size or mode than the training set's is
                converted as read (:func:`gmval.images.fit_to`).
            k: contributors per generated image; defaults to the valuator's k. Any k up to
                the recalled K reuses the cached stages.
            temperature: overrides the valuator's temperature for this call.
        """
        train = self._require_fit()
        generated = as_imageset(generated, "generated")
        # Generated images of another size or mode are read on the training grid, so every
        # stage compares like with like (grey <-> RGB by luma, centred crop, no squashing).
        generated = conform(generated, train.shape)
        k = self.k if k is None else positive_int("k", k)
        kk = self.recall_k(len(train))
        if k > kk:
            raise ValueError(f"k={k} exceeds the {kk} recalled candidates; raise recall_k")
        self.timings = {key: v for key, v in self.timings.items() if key in ("embed_train", "index", "quality_fit")}
        gen_emb, gen_key = self.embed(generated, "embed_generated")
        cand, recall_sq, recall_key = self.recall(generated, gen_emb, gen_key)
        dist = self.rerank(generated, cand, recall_key, gen_emb, recall_sq)
        q = self.quality_scores(generated, gen_emb, gen_key)
        with self._timed("value"):
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
            top_idx = np.take_along_axis(cand, order, axis=1)
            top_d = np.take_along_axis(dist, order, axis=1).astype(np.float64)
            t = resolve_temperature(self.temperature if temperature is None else temperature, top_d)
            weights = contribution_weights(top_d, t)
            contrib = q[:, None] * weights
            values = data_values(top_idx, contrib, len(train))
            result = self._result(train, generated, top_idx, top_d, weights, q, contrib, values, k, t)
        result.timings = dict(self.timings)
        return result

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """:meth:`value` with the valuator's k and temperature, as an :class:`~gmval.attribution.Attribution`
        (:meth:`ValuationResult.attribution`)."""
        return self.value(generated).attribution()

    def _result(self, train: ImageSet, generated: ImageSet, top_idx: np.ndarray, top_d: np.ndarray,
                weights: np.ndarray, q: np.ndarray, contrib: np.ndarray, values: np.ndarray, k: int,
                t: float) -> ValuationResult:
        m = len(generated)
        gen_index = np.repeat(np.arange(m), k)
        flat = top_idx.ravel()
        contributors = {"generated_index": gen_index, "generated_id": generated.ids[gen_index]}
        if generated.labels is not None:
            contributors["generated_label"] = generated.labels[gen_index]
        contributors |= {"rank": np.tile(np.arange(1, k + 1), m), "train_index": flat, "train_id": train.ids[flat]}
        if train.labels is not None:
            contributors["train_label"] = train.labels[flat]
        contributors |= {"distance": top_d.ravel(), "weight": weights.ravel(), "quality": np.repeat(q, k),
                         "contribution": contrib.ravel()}
        table = {"train_index": np.arange(len(train)), "train_id": train.ids}
        if train.labels is not None:
            table["train_label"] = train.labels
        ranks = np.empty(len(train), dtype=np.int64)
        ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(train) + 1)
        table |= {"value": values, "n_generated": np.bincount(flat, minlength=len(train)), "rank": ranks}
        config = {"encoder": self.encoder.params(), "distance": self.distance.params(),
                  "quality": self.quality.params(), "recall": self.recall_config.params(), "k": k,
                  "recall_k": self.recall_k(len(train)), "temperature": self.temperature,
                  "temperature_used": t, "n_train": len(train), "n_generated": m,
                  "train": train.fingerprint(), "generated": generated.fingerprint()}
        return ValuationResult(pd.DataFrame(table), pd.DataFrame(contributors), {}, config)


def value(train: ImageSet | torch.Tensor | np.ndarray, generated: ImageSet | torch.Tensor | np.ndarray, *,
          encoder: str | tuple[str, dict[str, Any]] | Encoder = DEFAULT_ENCODER,
          rerank: str | tuple[str, dict[str, Any]] | Distance = DEFAULT_DISTANCE,
          quality: str | tuple[str, dict[str, Any]] | QualityModel = "none", k: int = 30,
          **kwargs: Any) -> ValuationResult:
    """One call: value each training image by its contributions to the generated images.

    Args:
        train: training images (an :class:`ImageSet`, or uint8 / [0, 1] float arrays).
        generated: generated images.
        encoder: recall encoder name or instance (see :func:`gmval.list_encoders`).
        rerank: re-ranking distance (see :func:`gmval.list_distances`); ``"none"`` is No-Rerank.
        quality: quality model (see :func:`gmval.list_quality_models`).
        k: contributors per generated image.
        **kwargs: further :class:`Valuator` arguments (``recall_k``, ``recall``,
            ``temperature``, ``cache_dir``, ...).
    """
    return Valuator(encoder, rerank, quality, k=k, **kwargs).fit(train).value(generated)
