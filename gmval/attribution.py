"""One interface for every attribution method: GMValuator, the baselines, and the controls.

Attribution (valuation) methods are objects with the same small API, in the spirit of
dattri's attributor / metric split: the methods produce scores, the criteria
(:mod:`gmval.counterfactual`'s LDS and top-k removal, the C1-C4 tables) consume them.

* built from settings (``create_attributor(name, **settings)``, or the class itself); building
  one trains and loads nothing;
* ``fit(train, model=None)``: the training set, and the model where the method needs one (a
  zoo name or a training-run folder for VAE-TracIn, the trained modules for TRAK, a zoo GAN
  name for IF4GAN; GMValuator and the pixel baseline need none);
* ``score(generated)``: an :class:`Attribution`, the one result type.

Sign convention: a **higher score means "this training image helps the model produce
generated image j"**; methods whose raw output reads the other way (distances,
harmfulness) negate it.

Adding a method is one module implementing :class:`Attributor` and one registration below::

    attributor = create_attributor("pixel", k=20).fit(train)
    result = attributor.score(generated)
    result.matrix()        # (m generated, n train) scores, 0 where a method gave none
    result.top_k(10)       # (m, 10) training positions, highest score first
    result.values          # (n,) value of each training image
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gmval.images import ImageSet
from gmval.registry import Registry
from gmval.store import atomic_write_bytes, atomic_write_text


@dataclass(frozen=True)
class Attribution:
    """Scores of training images for generated images, as every attribution method returns them.

    Attributes:
        method: registered name of the method that made it (:func:`list_attributors`).
        n_train: training-set size (the columns of :meth:`matrix`).
        scores: float64 scores, higher = the training image helps produce the generated one:
            (m, n) for every pair when ``index`` is None, else (m, r) with ``scores[j, c]``
            the score of training image ``index[j, c]`` (sparse: the others count 0).
        index: None (dense), or (m, r) int64 training positions each generated image's scores
            refer to, in the method's order (nearest first for GMValuator), which breaks ties
            in :meth:`top_k`.
        values: (n,) value of each training image; by default its scores summed over the
            generated images.
        timings: seconds per stage of the computation, and ``total``.
        config: the settings and identities that produced it.
        detail: the method's own richer result, if it has one (GMValuator's
            :class:`~gmval.valuator.ValuationResult` tables, IF4GAN's per-image table), else None.

    Raises:
        ValueError: for scores that are not 2-D or not finite, an index of another shape than
            the scores or outside 0..n_train-1, dense scores without n_train columns, or values
            of the wrong length.
    """

    method: str
    n_train: int
    scores: np.ndarray
    index: np.ndarray | None = None
    values: np.ndarray = field(default=None)  # type: ignore[assignment]  # filled in __post_init__
    timings: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    detail: Any = None

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(f"{self.method}: scores must be 2-D (generated x scored), got shape {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError(f"{self.method}: the attribution scores hold {int((~np.isfinite(scores)).sum())} NaN "
                             "or infinite values")
        object.__setattr__(self, "scores", scores)
        if self.index is None:
            if scores.shape[1] != self.n_train:
                raise ValueError(f"{self.method}: dense scores have {scores.shape[1]} columns for "
                                 f"{self.n_train} training images")
        else:
            index = np.asarray(self.index, dtype=np.int64)
            if index.shape != scores.shape:
                raise ValueError(f"{self.method}: index has shape {index.shape}, scores {scores.shape}")
            if index.size and (index.min() < 0 or index.max() >= self.n_train):
                bad = index.min() if index.min() < 0 else index.max()
                raise ValueError(f"{self.method}: training index {bad} outside 0..{self.n_train - 1}")
            object.__setattr__(self, "index", index)
        if self.values is None:
            values = self.summed_scores()
        else:
            values = np.asarray(self.values, dtype=np.float64)
            if values.shape != (self.n_train,):
                raise ValueError(f"{self.method}: values have shape {values.shape}, expected ({self.n_train},)")
        object.__setattr__(self, "values", values)

    def summed_scores(self) -> np.ndarray:
        """(n,) each training image's scores summed over the generated images (the default values)."""
        if self.index is None:
            return self.scores.sum(axis=0)
        return np.bincount(self.index.ravel(), weights=self.scores.ravel(), minlength=self.n_train)

    @property
    def n_generated(self) -> int:
        """m, the number of generated images scored."""
        return self.scores.shape[0]

    def matrix(self) -> np.ndarray:
        """(m, n) float64 scores of every (generated, training) pair, 0 where the method gave none."""
        if self.index is None:
            return self.scores.copy()
        dense = np.zeros((self.n_generated, self.n_train))
        np.add.at(dense, (np.repeat(np.arange(self.n_generated), self.index.shape[1]), self.index.ravel()),
                  self.scores.ravel())
        return dense

    def top_k(self, k: int) -> np.ndarray:
        """(m, k) training positions of each generated image's k highest scores, highest first.

        Only the scored training images are ranked (a sparse result's others are not ties at
        0); equal scores keep the method's order.

        Raises:
            ValueError: for k outside 1..(training images scored per generated image).
        """
        width = self.scores.shape[1]
        if not 1 <= k <= width:
            raise ValueError(f"k={k} must be between 1 and the {width} training images {self.method} scores "
                             "per generated image")
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        return order if self.index is None else np.take_along_axis(self.index, order, axis=1)

    def subset(self, rows: np.ndarray) -> Attribution:
        """The attribution of the generated images at positions ``rows`` alone (their scores, summed values).

        A score depends on its own generated image only, so one scoring of a set answers for
        any part of it (C3 values the generated samples with and without the poor ones so).

        Raises:
            ValueError: for rows outside 0..m-1, or a method whose values are not its scores
                summed over the generated images (they cannot be split by generated image).
        """
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_generated):
            raise ValueError(f"{self.method}: generated positions must lie in 0..{self.n_generated - 1}")
        if not np.allclose(self.summed_scores(), self.values, rtol=1e-9, atol=1e-12):
            raise ValueError(f"{self.method}: its values are not its summed scores, so they cannot be split "
                             "by generated image")
        return Attribution(self.method, self.n_train, self.scores[rows],
                           index=None if self.index is None else self.index[rows],
                           timings=self.timings, config={**self.config, "generated_rows": len(rows)})

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``scores.npz`` (scores, index when sparse, values) and ``attribution.json`` atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {"scores": out / "scores.npz", "config": out / "attribution.json"}
        arrays = {"scores": self.scores, "values": self.values}
        if self.index is not None:
            arrays["index"] = self.index
        buffer = io.BytesIO()  # in memory first, so the archive is written atomically
        np.savez(buffer, **arrays)
        atomic_write_bytes(files["scores"], buffer.getvalue())
        atomic_write_text(files["config"], json.dumps({"method": self.method, "n_train": self.n_train,
                                                       "config": self.config, "timings": self.timings},
                                                      indent=1, default=str))
        return files


class Attributor(Protocol):
    """An attribution method: built from settings, fitted on a training set (and model), then scoring.

    Attributes:
        method: its registered name.
    """

    method: str

    def fit(self, train: ImageSet, model: Any = None) -> Attributor:
        """Take the training set (and the trained model, for methods that differentiate or replay it); returns self."""
        ...

    def score(self, generated: ImageSet) -> Attribution:
        """Scores of every fitted training image for each of the ``generated`` images."""
        ...


ATTRIBUTORS: Registry[Attributor] = Registry("attribution method")


@ATTRIBUTORS.register("gmvaluator", "GMValuator (Algorithm 1): recall, re-ranking, quality-calibrated contributions")
def _gmvaluator(**settings: Any) -> Attributor:
    from gmval.valuator import Valuator

    return Valuator(**settings)


@ATTRIBUTORS.register("pixel", "raw-pixel nearest neighbours: -L2 distance, or a top-k indicator")
def _pixel(**settings: Any) -> Attributor:
    from gmval.baselines.pixel import PixelNearest

    return PixelNearest(**settings)


@ATTRIBUTORS.register("random-scores", "independent standard-normal scores (a control that predicts nothing)")
def _random_scores(**settings: Any) -> Attributor:
    from gmval.baselines.random_scores import RandomScores

    return RandomScores(**settings)


@ATTRIBUTORS.register("vae-tracin", "VAE-TracIn (Kong & Chaudhuri 2021): gradient influence over a β-VAE's snapshots")
def _vae_tracin(**settings: Any) -> Attributor:
    from gmval.baselines.vae_tracin import VAETracIn

    return VAETracIn(**settings)


@ATTRIBUTORS.register("trak", "TRAK (Park et al. 2023): projected loss gradients under a linearised model")
def _trak(**settings: Any) -> Attributor:
    from gmval.baselines.trak import TRAK

    return TRAK(**settings)


@ATTRIBUTORS.register("if4gan", "IF4GAN (Terashita et al. 2021): influence on a zoo GAN's metric via traced SGD")
def _if4gan(**settings: Any) -> Attributor:
    from gmval.baselines.if4gan import IF4GAN

    return IF4GAN(**settings)


def list_attributors() -> list[str]:
    """Names accepted by :func:`create_attributor`."""
    return ATTRIBUTORS.names()


def create_attributor(name: str, **settings: Any) -> Attributor:
    """Build the attribution method registered as ``name`` from its settings (nothing is trained or loaded).

    Raises:
        KeyError: for an unknown name; the message names it and lists the known ones.
    """
    return ATTRIBUTORS.create(name, **settings)


__all__ = ["ATTRIBUTORS", "Attribution", "Attributor", "create_attributor", "list_attributors"]
