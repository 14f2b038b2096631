"""TRAK (Park et al., ICML 2023) for generative models, with D-TRAK's diffusion loss (Zheng et al., ICLR 2024).

TRAK linearises the trained model around its final weights θ* and scores training image
x_i for a query (generated) image z by the influence of x_i on z's loss under that linear
model, with the gradients randomly projected to ``projection_dim`` dimensions::

    φ(x) = P ∇_θ ℓ(x; θ*)                      (P: Rademacher, projection_dim × #params, / √dim)
    Φ = [φ(x_1); …; φ(x_n)]                     (n × dim, the training set)
    τ(z, x_i) = φ(z) (ΦᵀΦ + λI)⁻¹ φ(x_i)ᵀ

averaged over an ensemble of independently trained models. ℓ is the model's own training
loss with fixed noise (:class:`VAELoss`: the negative β-ELBO over fixed draws of z;
:class:`DiffusionLoss`: the denoising loss at evenly spaced fixed timesteps and noise,
which is "TRAK" in D-TRAK's tables; D-TRAK's own variant replaces the loss by ‖ε_θ‖²).

**Sign.** Removing x_i moves the weights by about +(ΦᵀΦ)⁻¹ φ(x_i) in the linearised
model (the influence function with the Gauss-Newton Hessian ΦᵀΦ), which raises z's loss
by about τ(z, x_i). A positive score therefore means "x_i helped the model produce z", the
convention of :mod:`gmval.counterfactual` and of VAE-TracIn's proponents.

**Ridge.** λ = ``ridge`` × tr(ΦᵀΦ) / dim, i.e. relative to the mean eigenvalue of ΦᵀΦ, so
the setting does not depend on the loss's scale or the projection size. It matters when
dim approaches or exceeds n (ΦᵀΦ is then rank-deficient). D-TRAK picks λ from 27 values by
the LDS on the evaluation set; here it is fixed a priori (default 1e-2), not tuned.

Deviations from TRAK's reference code (``trak``): no soft-thresholding of the scores, no
Q = 1 − p term (that is for classifiers), one projection seed shared by the ensemble, and
the ensemble is the full-data models of different training seeds (not subsets).

Cost and memory. Training gradients are computed ``chunk_size`` images at a time
(``torch.func``: ``functional_call`` + ``vmap`` + ``grad``), projected, and dropped: only
the projected features (n × dim) are kept, never a dense (n × #params) matrix. The
projected features of every (model, image set) are a resumable cached artefact keyed by a
digest of the model's weights, the loss, the projection and the images, so a new query set
reuses the training features.

::

    trak = TRAK(VAELoss(draws=4), projection_dim=1024).fit(train, [model])
    result = trak.score(generated)     # an Attribution
    result.matrix()                    # (m, n_train) scores
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from gmval import paths
from gmval.attribution import Attribution
from gmval.baselines.gradients import QUERY, TRAIN, RademacherProjection, image_noise, per_sample_gradients
from gmval.images import ImageSet, as_imageset, to_float
from gmval.models.training import default_device, weights_digest
from gmval.stages import TimedStages
from gmval.store import ArtifactStore

if TYPE_CHECKING:
    from gmval.models.diffusion import ConditionalDiffusion
    from gmval.models.vae import BetaVAE


class GradientLoss(Protocol):
    """A model's per-image training loss with fixed noise: what TRAK differentiates.

    Attributes:
        conditional: whether the loss needs each image's class label.
    """

    conditional: ClassVar[bool]

    def params(self) -> dict[str, Any]:
        """What the loss depends on besides the model and the images (for cache keys)."""
        ...

    def noise(self, model: nn.Module, stream: int, positions: np.ndarray) -> torch.Tensor:
        """The fixed noise of the images at ``positions`` of one image set, batched along dim 0."""
        ...

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """(B,) losses of images ``x`` in [0, 1] with classes ``y`` and their ``noise``."""
        ...


@dataclass(frozen=True)
class VAELoss:
    """A β-VAE's negative β-ELBO over ``draws`` fixed reparameterised draws per image.

    Image p of a set has noise ``np.random.default_rng([seed, stream, p])`` (the scheme of
    VAE-TracIn), with separate streams for training and query images.

    Attributes:
        draws: Monte-Carlo samples of z per image.
        seed: seeds the noise.
    """

    conditional: ClassVar[bool] = False
    draws: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.draws < 1:
            raise ValueError(f"draws must be >= 1, got {self.draws}")

    def params(self) -> dict[str, Any]:
        """The loss's identity."""
        return {"loss": "vae-elbo", **asdict(self)}

    def noise(self, model: BetaVAE, stream: int, positions: np.ndarray) -> torch.Tensor:
        """(len(positions), draws, latent_dim) standard-normal ε."""
        return image_noise(self.seed, stream, positions, self.draws, model.config.latent_dim)

    def __call__(self, model: BetaVAE, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """:meth:`~gmval.models.vae.BetaVAE.loss` with the given ε (the labels are unused)."""
        return model.loss(x, eps=noise)


@dataclass(frozen=True)
class DiffusionLoss:
    """A conditional diffusion model's denoising loss at fixed, evenly spaced timesteps and noise.

    Image p of a set has noise ``np.random.default_rng([seed, stream, p])`` of shape
    (timesteps, draws, C, canvas, canvas); the loss is
    :meth:`~gmval.models.diffusion.ConditionalDiffusion.fixed_loss` with the image's own class
    (no label dropout).

    Attributes:
        timesteps: evenly spaced diffusion steps (D-TRAK: 10 or 100).
        draws: noise draws per step.
        seed: seeds the noise.
    """

    conditional: ClassVar[bool] = True
    timesteps: int = 10
    draws: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.timesteps < 1 or self.draws < 1:
            raise ValueError(f"timesteps and draws must be >= 1, got {self.timesteps} and {self.draws}")

    def params(self) -> dict[str, Any]:
        """The loss's identity."""
        return {"loss": "diffusion-denoising", **asdict(self)}

    def noise(self, model: ConditionalDiffusion, stream: int, positions: np.ndarray) -> torch.Tensor:
        """(len(positions), timesteps, draws, C, canvas, canvas) standard-normal noise."""
        cfg = model.config
        shape = (self.timesteps, self.draws, cfg.channels, cfg.canvas, cfg.canvas)
        return torch.from_numpy(np.stack([
            np.random.default_rng([self.seed, stream, int(p)]).standard_normal(shape, dtype=np.float32)
            for p in positions]))

    def __call__(self, model: ConditionalDiffusion, x: torch.Tensor, y: torch.Tensor,
                 noise: torch.Tensor) -> torch.Tensor:
        """The mean prediction MSE over the fixed (timestep, draw) pairs."""
        from gmval.models.diffusion import evenly_spaced_timesteps

        steps = evenly_spaced_timesteps(self.timesteps, model.config.train_timesteps)
        return model.fixed_loss(x, y, steps, noise)


class _Objective(nn.Module):
    """Model and loss as one module, so ``functional_call`` can swap the model's weights."""

    def __init__(self, model: nn.Module, loss: GradientLoss) -> None:
        super().__init__()
        self.model, self.objective = model, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.objective(self.model, x, y, noise)


def trak_scores(train_features: np.ndarray, query_features: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """τ = Ψ (ΦᵀΦ + λI)⁻¹ Φᵀ for one model, λ = ``ridge`` · tr(ΦᵀΦ)/dim; (m, n) float64.

    Args:
        train_features: Φ, (n, dim) projected training gradients.
        query_features: Ψ, (m, dim) projected query gradients.
        ridge: λ relative to the mean eigenvalue of ΦᵀΦ (> 0).

    Raises:
        ValueError: for mismatched dimensions, a non-positive ridge or non-finite features.
    """
    phi, psi = np.asarray(train_features, np.float64), np.asarray(query_features, np.float64)
    if phi.ndim != 2 or psi.ndim != 2 or phi.shape[1] != psi.shape[1]:
        raise ValueError(f"features must be (n, dim) and (m, dim) with one dim, got {phi.shape} and {psi.shape}")
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    if not (np.isfinite(phi).all() and np.isfinite(psi).all()):
        raise ValueError("the features hold NaN or infinite values")
    gram = phi.T @ phi
    dim = gram.shape[0]
    lam = ridge * max(np.trace(gram) / dim, np.finfo(np.float64).tiny)
    solved = np.linalg.solve(gram + lam * np.eye(dim), psi.T)  # (dim, m)
    return (phi @ solved).T


def _labels_digest(images: ImageSet) -> str | None:
    if images.labels is None:
        return None
    return hashlib.sha256(np.asarray(images.labels, dtype=np.int64).tobytes()).hexdigest()[:16]


class TRAK(TimedStages):
    """TRAK scores of training images for query images, from an ensemble of trained models.

    Built from settings alone; :meth:`fit` takes the training set and the trained models,
    :meth:`score` the queries (an :class:`~gmval.attribution.Attributor`).

    Args:
        loss: the per-image loss differentiated (:class:`VAELoss` or :class:`DiffusionLoss`;
            :meth:`~gmval.models.kinds.ModelKind.gradient_loss` gives a model kind's).
        projection_dim: dimension of the random projection.
        ridge: λ relative to the mean eigenvalue of ΦᵀΦ (module docstring).
        seed: seeds the Rademacher projection.
        chunk_size: images per per-sample-gradient batch.
        cache_dir: artefact folder; None disables caching.
        device: where to compute; default GPU when present.
        progress: show tqdm bars.

    Raises:
        ValueError: for a non-positive size or ridge.
    """

    method = "trak"

    def __init__(self, loss: GradientLoss, *, projection_dim: int = 1024, ridge: float = 1e-2, seed: int = 0,
                 chunk_size: int = 64, cache_dir: str | Path | None = paths.CACHE,
                 device: str | torch.device | None = None, progress: bool = True) -> None:
        for name, value in (("projection_dim", projection_dim), ("chunk_size", chunk_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not ridge > 0:
            raise ValueError(f"ridge must be > 0, got {ridge}")
        self.device = torch.device(device) if device is not None else default_device()
        self.loss, self.ridge, self.seed, self.chunk_size = loss, ridge, seed, chunk_size
        self.projection_dim = projection_dim
        self.store, self.progress = ArtifactStore(cache_dir), progress
        self.train: ImageSet | None = None
        self.timings: dict[str, float] = {}

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray,
            model: nn.Module | Sequence[nn.Module] | None = None) -> TRAK:
        """Take the training images and the trained model(s) whose gradients are projected.

        Args:
            train: the models' training images.
            model: one trained model or an ensemble (e.g. the full-data model of each training
                seed), all of one architecture, since they share the projection.

        Raises:
            ValueError: for no models, models of different sizes, or unlabelled training
                images for a conditional loss.
        """
        models = [model] if isinstance(model, nn.Module) else list(model or [])
        if not models:
            raise ValueError("TRAK needs at least one trained model")
        self.models = [m.to(self.device).eval() for m in models]
        sizes = {sum(p.numel() for p in m.parameters()) for m in self.models}
        if len(sizes) != 1:
            raise ValueError(f"the models have different parameter counts {sorted(sizes)}; TRAK's ensemble "
                             "shares one projection")
        self.num_params = sizes.pop()
        self.digests = [weights_digest(m) for m in self.models]
        self.projection = RademacherProjection(self.projection_dim, self.num_params, self.seed)
        self.train = self._check(train, "training")
        return self

    def _check(self, images: ImageSet | torch.Tensor | np.ndarray, name: str) -> ImageSet:
        images = as_imageset(images, name)
        if self.loss.conditional and images.labels is None:
            raise ValueError(f"the {name} images have no labels; the conditional loss needs each image's class")
        return images

    def _chunks(self, model: nn.Module, images: ImageSet, stream: int,
                offset: int) -> Iterator[tuple[slice, np.ndarray]]:
        """(rows, projected gradients) of ``images[offset:]``, ``chunk_size`` images at a time."""
        objective = _Objective(model, self.loss)
        stage = "train_gradients" if stream == TRAIN else "query_gradients"
        for start in range(offset, len(images), self.chunk_size):
            rows = slice(start, min(start + self.chunk_size, len(images)))
            positions = np.arange(rows.start, rows.stop)
            with self._timed(stage):
                x = to_float(images.images[rows].to(self.device))
                y = (torch.zeros(len(positions), dtype=torch.long) if images.labels is None
                     else torch.from_numpy(np.asarray(images.labels[rows], dtype=np.int64))).to(self.device)
                noise = self.loss.noise(model, stream, positions).to(self.device)
                g = per_sample_gradients(objective, x, y, noise)
                block = self.projection(g).cpu().numpy()
            yield rows, block

    def features(self, model_index: int, images: ImageSet, stream: int) -> np.ndarray:
        """Projected loss gradients (len(images), projection_dim) of one model, cached.

        Args:
            model_index: which of :attr:`models`.
            images: the image set (positions seed the noise).
            stream: 0 for training images, 1 for queries (independent noise).
        """
        model = self.models[model_index]
        params = {"model": self.digests[model_index], "loss": self.loss.params(),
                  "projection": self.projection.params(), "images": images.fingerprint(),
                  "labels": _labels_digest(images), "stream": stream}
        return self.store.cached_rows("trak-features", params, "features", (len(images), self.projection.dim),
                                      "float32", lambda offset: self._chunks(model, images, stream, offset),
                                      lambda: self._bar(len(images), f"TRAK model {model_index}"))

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """Dense (m, n) TRAK scores averaged over the ensemble; higher = training image i helps query j.

        Raises:
            RuntimeError: before :meth:`fit`.
            ValueError: for queries of another shape than the training images, or without
                labels for a conditional loss.
        """
        if self.train is None:
            raise RuntimeError("call fit(train, model) before scoring generated images")
        train = self.train
        start = time.perf_counter()
        self.timings = {}
        queries = self._check(generated, "query")
        if train.shape != queries.shape:
            raise ValueError(f"training images are {train.shape}, queries {queries.shape}")
        total = np.zeros((len(queries), len(train)))
        for i in range(len(self.models)):
            phi = self.features(i, train, TRAIN)
            psi = self.features(i, queries, QUERY)
            with self._timed("scores"):
                total += trak_scores(phi, psi, self.ridge)
        config = {"method": "trak", "models": self.digests, "loss": self.loss.params(),
                  "projection": self.projection.params(), "num_params": self.num_params, "ridge": self.ridge,
                  "ridge_scale": "mean eigenvalue of Phi^T Phi", "n_train": len(train), "n_generated": len(queries),
                  "train": train.fingerprint(), "generated": queries.fingerprint(),
                  "reductions": [(f"gradients projected to {self.projection.dim} dimensions (Rademacher) "
                                  f"from {self.num_params}"), f"ensemble of {len(self.models)} model(s)"]}
        self.timings["total"] = time.perf_counter() - start
        return Attribution(self.method, len(train), total / len(self.models), timings=dict(self.timings),
                           config=config)
