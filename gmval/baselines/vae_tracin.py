"""VAE-TracIn (Kong & Chaudhuri, NeurIPS 2021): gradient-based influence for our β-VAE.

The influence of training image x_i on a query (generated) image z is TracIn summed over
the training run's weight snapshots θ_c::

    score(x_i, z) = Σ_c w_c ⟨∇_θ ℓ̂(x_i; θ_c), ∇_θ ℓ̂(z; θ_c)⟩,   w_c = η · B · (T_c − T_{c−1}) / N

with θ all encoder and decoder weights, η the training learning rate, B its batch size,
T_c the step of snapshot c (T_0 = 0, or the previous *used* snapshot when only some are
used), and N the size of the training set passed to :meth:`VAETracIn.fit`. All w_c are
equal when every snapshot is used, so they only rescale; they are computed honestly anyway.
Proponents (the top-k contributors) are the training images with the highest scores.

The loss ℓ̂ is a Monte-Carlo negative β-ELBO over ``draws`` (16 in the reference)
reparameterised samples, differentiated once through their mean:

* ``loss="elbo"`` (default): the model's own training loss, :meth:`BetaVAE.loss`
  (Bernoulli BCE on MNIST, Gaussian on the CIFAR stand-in), as the paper defines ℓ_β.
* ``loss="mse"``: the reference code's loss for both datasets,
  (1/12288) · mean_s [‖sigmoid(dec(z_s)) − x‖² + β·KL], which on MNIST does not match
  the Bernoulli loss the VAE was trained with.

Deviations from the reference implementation (FengNiMa/VAE-TracIn-pytorch):

* The noise ε_s is fixed: image ``p`` of the training set uses
  ``np.random.default_rng([seed, 0, p])`` and query ``j`` uses ``[seed, 1, j]``, so training
  and query gradients have independent noise (as in the reference) but a rerun, another
  chunk size or another device gives the same scores. The reference draws unseeded noise.
  An image's noise depends only on its position, so a training subset's scores equal the
  corresponding rows of the full run's.
* Per-sample gradients come from ``torch.func`` (:mod:`gmval.baselines.gradients`), the
  ``draws`` copies of an image sharing one batch, instead of one image at a time.
* The checkpoint weights use our run's learning rate, batch size and snapshot steps.
  With Adam (the CPU profiles) η·B·ΔT/N is only the nominal SGD step, still a constant.
* Optional, recorded in ``result.config["reductions"]``: a stratified training subset,
  fewer snapshots (evenly spread over the run, always the last), and a TRAK-style random
  projection of the gradients. The ``paper`` profile uses none of them.

Cost and caching. Each snapshot needs one per-sample gradient per training and query
image (``draws`` decoder passes each). Exact scores (no projection) are accumulated as
G_train · G_queryᵀ streamed over training chunks, so only one chunk's gradients and the
queries' (m × #params floats) are ever in memory; each snapshot's (n, m) score block is a
resumable artefact keyed by the snapshot file's hash, loss, draws, seed, training set,
subset and queries. With ``projection_dim`` the gradients are multiplied by a fixed-seed
Rademacher matrix generated block by block from seeds (never held whole); the projected
training gradients (n, projection_dim) are cached per snapshot independently of the
queries, so new query sets reuse them. On a CPU the projection costs #params ×
projection_dim multiply-adds per image, more than the exact dot products with 100 queries,
so it pays off only for many query sets or on a GPU.

::

    tracin = VAETracIn.from_profile("default").fit(zoo.training_data("mnist-vae").train, "mnist-vae")
    result = tracin.score(zoo.sample("mnist-vae", 100, seed=0))    # an Attribution
    result.top_k(100)           # (m, k) proponents, highest score first
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gmval import paths
from gmval.attribution import Attribution
from gmval.baselines.gradients import QUERY, TRAIN, RademacherProjection, image_noise, per_sample_gradients
from gmval.data import subsample
from gmval.images import ImageSet, as_imageset, to_float
from gmval.models.kinds import model_kind
from gmval.models.training import PARAMS, default_device, list_snapshots, load_weights
from gmval.models.vae import BetaVAE
from gmval.profiles import Profile, profile_settings
from gmval.stages import TimedStages
from gmval.store import ArtifactStore

LOSSES = ("elbo", "mse")
#: The reference scales its MSE loss by 1/(3·64·64) for every dataset, MNIST included.
REFERENCE_MSE_SCALE = 1.0 / 12288.0


class _Objective(nn.Module):
    """The per-image TracIn loss as a module, so ``functional_call`` can swap its weights."""

    def __init__(self, vae: BetaVAE, loss: str) -> None:
        super().__init__()
        self.vae, self.kind = vae, loss

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if self.kind == "elbo":
            return self.vae.loss(x, eps=eps)
        return reference_mse_loss(self.vae, x, eps)


def reference_mse_loss(vae: BetaVAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The reference code's TracIn loss per image: (1/12288) · mean_s [‖sigmoid(dec(z_s)) − x‖² + β·KL].

    Args:
        vae: the model.
        x: images in [0, 1], (B, C, H, W).
        eps: standard-normal noise (B, draws, latent_dim).
    """
    mu, logvar = vae.encode(x)
    b, d = mu.shape
    z = (mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps).reshape(b * eps.shape[1], d)
    mean = vae.decode(z).reshape(b, eps.shape[1], *x.shape[1:])
    sq = (mean - x[:, None]).pow(2).flatten(2).sum(2)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    return (sq + vae.config.beta * kl[:, None]).mean(1) * REFERENCE_MSE_SCALE


def select_snapshots(snapshots: list[tuple[int, Path]], count: int | None) -> list[tuple[int, Path]]:
    """``count`` snapshots evenly spread over the run, always including the last (all when None)."""
    if count is None or count >= len(snapshots):
        return list(snapshots)
    total = len(snapshots)
    return [snapshots[(i + 1) * total // count - 1] for i in range(count)]


def checkpoint_weights(steps: list[int], lr: float, batch_size: int, n_train: int) -> list[float]:
    """w_c = η·B·(T_c − T_{c−1})/N for the used snapshot steps (T_0 = 0)."""
    previous = [0, *steps[:-1]]
    return [lr * batch_size * (t - p) / n_train for t, p in zip(steps, previous, strict=True)]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _rows_digest(rows: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]


class VAETracIn(TimedStages):
    """VAE-TracIn scores of training images for query images, from a β-VAE's weight snapshots.

    Built from settings alone; :meth:`fit` takes the training set and the trained model,
    :meth:`score` the queries (an :class:`~gmval.attribution.Attributor`).

    Args:
        draws: Monte-Carlo samples of z per image in the loss (reference: 16).
        loss: ``"elbo"`` (the model's training loss) or ``"mse"`` (the reference code's).
        projection_dim: project gradients to this many dimensions (None: exact scores).
        snapshots: use this many snapshots, evenly spread and ending with the last (None: all).
        train_subset: score only a stratified subset of this many training images (None: all).
        seed: seeds the loss noise, the subset and the projection.
        chunk_size: images per per-sample-gradient batch.
        cache_dir: artefact folder; None disables caching.
        device: where to compute; default GPU when present.
        progress: show tqdm bars.
        profile: the zoo profile a generator name given to :meth:`fit` refers to.
        root: data folder of the zoo (default :data:`gmval.paths.DATA`).

    Raises:
        ValueError: for an unknown loss or a non-positive size.
    """

    method = "vae-tracin"

    def __init__(self, *, draws: int = 16, loss: str = "elbo", projection_dim: int | None = None,
                 snapshots: int | None = None, train_subset: int | None = None, seed: int = 0, chunk_size: int = 128,
                 cache_dir: str | Path | None = paths.CACHE, device: str | torch.device | None = None,
                 progress: bool = True, profile: Profile = "default", root: Path | None = None) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        for name, value in (("draws", draws), ("chunk_size", chunk_size), ("projection_dim", projection_dim),
                            ("snapshots", snapshots), ("train_subset", train_subset)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.draws, self.loss, self.projection_dim, self.seed = draws, loss, projection_dim, seed
        self.snapshots, self.train_subset, self.chunk_size = snapshots, train_subset, chunk_size
        self.device = torch.device(device) if device is not None else default_device()
        self.store, self.progress = ArtifactStore(cache_dir), progress
        self.profile, self.root = profile, root
        self.train: ImageSet | None = None
        self.timings: dict[str, float] = {}

    @classmethod
    def from_profile(cls, profile: Profile = "default", **overrides: Any) -> VAETracIn:
        """The settings of ``profile["baselines"]["vae_tracin"]`` with ``overrides`` on top.

        ``profile`` is also the zoo profile a generator name given to :meth:`fit` refers to.
        """
        settings = {**profile_settings(profile)["baselines"]["vae_tracin"], **overrides}
        return cls(profile=profile, **settings)

    def _resolve(self, model: str | Path) -> Path:
        from gmval.models import zoo

        if isinstance(model, str) and model in zoo.GENERATORS:
            if zoo.GENERATORS[model].kind != "vae":
                raise ValueError(f"VAE-TracIn needs a VAE; {model!r} is a {zoo.GENERATORS[model].kind}")
            zoo.get_generator(model, self.profile, root=self.root, progress=self.progress)
            return zoo.generator_folder(model, self.profile, root=self.root)
        folder = Path(model)
        if not (folder / PARAMS).is_file():
            raise ValueError(f"{model!r} is neither a zoo generator name nor a training run folder "
                             f"(no {PARAMS} in it)")
        return folder

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray, model: str | Path | None = None) -> VAETracIn:
        """Take the VAE's training images and the VAE, whose snapshots are differentiated.

        Args:
            train: the VAE's training images (their positions are the result's training indices).
            model: a zoo generator name (``"mnist-vae"``; trained first if needed) or the folder
                of a :func:`~gmval.models.vae.train_vae` run with ``snapshots/``.

        Raises:
            ValueError: for no model, an unknown name, a folder that is not a β-VAE run or has no
                snapshots, training images of another shape than the VAE's, or a ``train_subset``
                beyond the training set.
        """
        if model is None:
            raise ValueError("VAE-TracIn needs the trained β-VAE: a zoo generator name or a train_vae run folder")
        self.folder = self._resolve(model)
        run = json.loads((self.folder / PARAMS).read_text())
        if run.get("model") != "beta-vae":
            raise ValueError(f"{self.folder} is a {run.get('model')!r} run, not a beta-vae run")
        self.run = run
        self.available = list_snapshots(self.folder)
        if not self.available:
            raise ValueError(f"{self.folder} holds no weight snapshots (snapshots/step-*.safetensors); "
                             "train the VAE with TrainConfig(keep_every=...) > 0")
        self.used = select_snapshots(self.available, self.snapshots)
        self.vae: BetaVAE = model_kind("vae").sampler(run["config"], {}).to(self.device).eval()
        self.objective = _Objective(self.vae, self.loss)
        self.num_params = sum(p.numel() for p in self.vae.parameters())
        self.projection = (None if self.projection_dim is None
                           else RademacherProjection(self.projection_dim, self.num_params, self.seed))
        train = self._check(train, "training")
        self.rows = self._rows(train)
        if train.fingerprint() != run.get("data"):
            warnings.warn(f"the training images given are not the set the VAE in {self.folder} was trained on",
                          stacklevel=2)
        self.train = train
        return self

    # ---------------------------------------------------------------- helpers

    def per_sample_gradients(self, images: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Flattened ∇_θ ℓ̂ of each image at the currently loaded weights: (B, #params) float32.

        Args:
            images: uint8 (B, C, H, W).
            eps: the images' noise (B, draws, latent_dim).
        """
        return per_sample_gradients(self.objective, to_float(images.to(self.device)), eps.to(self.device))

    def _gradients(self, images: ImageSet, positions: np.ndarray, stream: int,
                   offset: int = 0) -> Iterator[tuple[slice, torch.Tensor]]:
        """(rows, gradients) of ``images.images[positions[offset:]]`` chunk by chunk, projected when set."""
        d = self.vae.config.latent_dim
        for start in range(offset, len(positions), self.chunk_size):
            rows = slice(start, min(start + self.chunk_size, len(positions)))
            pos = positions[rows]
            with self._timed("train_gradients" if stream == TRAIN else "query_gradients"):
                g = self.per_sample_gradients(images.images[torch.from_numpy(pos)],
                                              image_noise(self.seed, stream, pos, self.draws, d))
                if self.projection is not None:
                    g = self.projection(g)
            yield rows, g

    def _filled(self, stage: str, params: dict[str, Any], name: str, shape: tuple[int, int], dtype: str,
                produce: Callable[[int], Iterator[tuple[slice, np.ndarray]]], desc: str) -> np.ndarray:
        """The array ``name`` of a chunked artefact, computed by ``produce(first missing row)`` where not cached."""
        return self.store.cached_rows(stage, params, name, shape, dtype, produce, lambda: self._bar(shape[0], desc))

    def _query_gradients(self, queries: ImageSet, base: dict[str, Any]) -> torch.Tensor:
        """(m, dim) gradients of all queries at the loaded snapshot (cached when projected)."""
        positions = np.arange(len(queries))
        if self.projection is None:  # m x #params floats: cheap to recompute, costly to store
            out = torch.empty(len(queries), self.num_params, device=self.device)
            for rows, g in self._gradients(queries, positions, QUERY):
                out[rows] = g
            return out

        def produce(offset: int) -> Iterator[tuple[slice, np.ndarray]]:
            for rows, g in self._gradients(queries, positions, QUERY, offset):
                yield rows, g.cpu().numpy()

        grads = self._filled("vae-tracin-query-grads", {**base, "queries": queries.fingerprint()}, "grads",
                             (len(queries), self.projection.dim), "float32", produce, "query gradients")
        return torch.from_numpy(grads).to(self.device)

    def _snapshot_scores(self, step: int, path: Path, train: ImageSet, rows: np.ndarray,
                         queries: ImageSet) -> np.ndarray:
        """(len(rows), m) float64 ⟨∇ℓ̂(x_i), ∇ℓ̂(z_j)⟩ at one snapshot, unweighted."""
        with self._timed("load"):
            load_weights(path, {"vae": self.vae})
            base = {"model": self.folder.name, "snapshot": {"file": path.name, "step": step,
                                                             "sha256": _file_digest(path)},
                    "loss": self.loss, "draws": self.draws, "seed": self.seed,
                    "projection": None if self.projection is None else self.projection.params()}
            train_params = {**base, "train": train.fingerprint(), "rows": _rows_digest(rows), "n_rows": len(rows)}
        desc = f"VAE-TracIn step {step}"
        if self.projection is None:
            def exact(offset: int) -> Iterator[tuple[slice, np.ndarray]]:
                if offset >= len(rows):
                    return
                g_query = self._query_gradients(queries, base)
                for chunk, g in self._gradients(train, rows, TRAIN, offset):
                    with self._timed("scores"):
                        block = (g @ g_query.T).double().cpu().numpy()
                    yield chunk, block

            return self._filled("vae-tracin-scores", {**train_params, "queries": queries.fingerprint()}, "scores",
                                (len(rows), len(queries)), "float64", exact, desc)

        def projected(offset: int) -> Iterator[tuple[slice, np.ndarray]]:
            for chunk, g in self._gradients(train, rows, TRAIN, offset):
                yield chunk, g.cpu().numpy()

        g_train = self._filled("vae-tracin-train-grads", train_params, "grads", (len(rows), self.projection.dim),
                               "float32", projected, desc)
        g_query = self._query_gradients(queries, base)
        with self._timed("scores"):
            return g_train.astype(np.float64) @ g_query.cpu().double().numpy().T

    # ---------------------------------------------------------------- score
    def _check(self, images: ImageSet | torch.Tensor | np.ndarray, name: str) -> ImageSet:
        images = as_imageset(images, name)
        expected = (self.vae.config.channels, self.vae.config.image_size, self.vae.config.image_size)
        if images.shape != expected:
            raise ValueError(f"{name} images are {images.shape}; the VAE in {self.folder} expects {expected}")
        return images

    def _rows(self, train: ImageSet) -> np.ndarray:
        if self.train_subset is None:
            return np.arange(len(train))
        if self.train_subset > len(train):
            raise ValueError(f"train_subset={self.train_subset} exceeds the training set ({len(train)} images)")
        picked = subsample(train, self.train_subset, seed=self.seed, stratified=True)
        return np.flatnonzero(np.isin(train.ids, picked.ids))

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """Score every (scored) training image against every query (generated) image.

        Returns:
            An :class:`~gmval.attribution.Attribution` whose row j holds the scored training
            images (all, unless ``train_subset``) and their TracIn scores for query j; its
            config records the snapshots, weights and ``reductions``, its timings the stages
            (``load``, ``query_gradients``, ``train_gradients``, ``scores``, ``total``; cache hits near 0).

        Raises:
            RuntimeError: before :meth:`fit`.
            ValueError: for query images of another shape than the VAE's.
        """
        if self.train is None:
            raise RuntimeError("call fit(train, model) before scoring generated images")
        train, rows = self.train, self.rows
        start = time.perf_counter()
        self.timings = {}
        queries = self._check(generated, "query")
        steps = [s for s, _ in self.used]
        weights = checkpoint_weights(steps, self.run["lr"], self.run["train"]["batch_size"], len(train))
        scores = np.zeros((len(rows), len(queries)), dtype=np.float64)
        for (step, path), w in zip(self.used, weights, strict=True):
            block = self._snapshot_scores(step, path, train, rows, queries)
            with self._timed("scores"):
                scores += w * block
        config = {"method": "vae-tracin", "model": self.folder.name, "model_config": self.run["config"],
                  "loss": self.loss, "draws": self.draws, "seed": self.seed,
                  "projection": None if self.projection is None else self.projection.params(),
                  "snapshots_available": [s for s, _ in self.available], "snapshots_used": steps,
                  "checkpoint_weights": weights, "lr": self.run["lr"], "batch_size": self.run["train"]["batch_size"],
                  "n_train": len(train), "n_scored": len(rows), "n_generated": len(queries),
                  "train_subset": self.train_subset, "reductions": self._reductions(len(train), len(rows)),
                  "train": train.fingerprint(), "generated": queries.fingerprint()}
        self.timings["total"] = time.perf_counter() - start
        return Attribution(self.method, len(train), scores.T, index=np.tile(rows, (len(queries), 1)),
                           timings=dict(self.timings), config=config)

    def _reductions(self, n_train: int, n_rows: int) -> list[str]:
        notes = []
        if n_rows < n_train:
            notes.append(f"training subset: {n_rows} of {n_train} images (stratified, seed {self.seed})")
        if len(self.used) < len(self.available):
            notes.append(f"snapshots: {len(self.used)} of {len(self.available)} "
                         f"(steps {', '.join(str(s) for s, _ in self.used)})")
        if self.projection is not None:
            notes.append(f"gradients projected to {self.projection_dim} dimensions (Rademacher) "
                         f"from {self.num_params}")
        return notes
