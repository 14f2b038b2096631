"""Counterfactual validation of attributions: the linear datamodeling score (LDS) and top-k removal.

C1-C4 (the paper's criteria) check that contributors *look* right: same class, same
attributes, noise ranked low, fast. None of them asks whether the model actually *needed*
those images. This module asks exactly that, by retraining:

1. **LDS** (D-TRAK, ICLR 2024; see ``shared/baselines.md`` Sec. 3). Draw random half-size
   subsets S_1..S_s of a small training set, retrain the generator on each, and measure the
   model's output on every generated sample j. An attribution method predicts that output
   as a sum of per-image scores, Σ_{i∈S} τ_j(i). The LDS of sample j is the Spearman
   correlation, over the subsets, between prediction and measurement; the LDS of a
   method is its mean over the generated samples.
2. **Top-k removal**: drop a sample's k highest-scored training images, retrain, and see how
   much the sample's loss rises, against dropping k random images.

Sign convention (everything here follows it): a **higher score means "this training image
helps the model produce generated sample j"**, so removing it should *raise* sample j's
loss. GMValuator's contributions, VAE-TracIn's proponent scores and TRAK's scores already
read that way; the raw-pixel baselines score ``-distance``. The measured output is therefore
the **negative** loss, so that a faithful method has a *positive* LDS. D-TRAK writes the
same thing as "predicted loss = −Σ τ" against the loss.

Two generators, each a :class:`Recipe` that :class:`SubsetTrainer` retrains:

* :class:`VAERecipe`, a β-VAE, measured by :func:`vae_sample_loss`: its own training
  objective (negative β-ELBO) on the generated image, with Monte-Carlo noise fixed per
  sample so that every retrained model is scored on identical draws.
* :class:`DiffusionRecipe`, the zoo's class-conditional diffusion model, measured by
  :func:`diffusion_sample_loss`: its training objective (the ε- or v-prediction MSE) at
  fixed, evenly spaced timesteps and fixed noise, conditioned on the class the sample was
  generated for (D-TRAK fixes its diffusion noise likewise).

Deviations from D-TRAK, all deliberate and reported:

* Generators on a stratified MNIST subset instead of a diffusion model on CIFAR-2; the
  diffusion loss averages a few timesteps rather than all 1000.
* The bootstrap interval resamples the **subsets and the generated samples jointly**
  (D-TRAK resamples its subsets): all samples share the same retrained models, so
  resampling samples alone would miss the model-level noise that moves every sample's
  correlation at once. Percentile interval, not BCa.
* A sample whose prediction is constant over the subsets (a method that gives none of its
  scores to any image, or gives all images the same score) has an undefined Spearman
  correlation; it counts as 0 ("predicts nothing") and is reported in ``n_constant``.
* Fewer subsets and training seeds than D-TRAK's 64 × 3 outside the ``paper`` profile.

Caching: every retrained model is a training folder (see :mod:`gmval.models.training`)
under ``<data>/models/counterfactual/cf-<kind>-<hash>`` (``cf-vae-…``, ``cf-diffusion-…``),
the hash covering the subset mask, the training set's fingerprint, the architecture and
every training setting, so a rerun loads instead of training and an interrupted training
resumes from its checkpoint.
Per-model sample losses are artefacts in ``<data>/cache/counterfactual``.

::

    trainer = SubsetTrainer.from_profile("default")        # key="counterfactual_diffusion" for part 2
    full = trainer.fit(trainer.full_mask())
    generated = trainer.generate(full, 100, seed=1)
    masks = random_subsets(len(trainer.train), 32, seed=0)
    losses = trainer.subset_losses(masks, generated, draws=32, seed=0)      # (32, 100)
    print(lds(attribution_matrix(result, len(trainer.train)), masks, losses))
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from gmval import paths
from gmval.data import subsample
from gmval.data.curation import stratified_counts
from gmval.images import ImageSet, to_float
from gmval.models.training import TrainConfig, train_precision
from gmval.models.vae import BetaVAE, VAEConfig, train_vae
from gmval.parallel import resolve_workers, run_jobs
from gmval.profiles import Profile, profile_settings
from gmval.store import ArtifactStore, artefact_key
from gmval.valuator import ValuationResult

if TYPE_CHECKING:  # diffusers is slow to import; the diffusion parts import it when used
    from gmval.models.diffusion import ConditionalDiffusion, DiffusionConfig

#: Generated images scored per forward pass in :func:`vae_sample_loss`.
LOSS_BATCH = 64
#: Noisy copies (images × steps × draws) per forward pass in :func:`diffusion_sample_loss`.
DIFFUSION_LOSS_COPIES = 512


# --------------------------------------------------------------------------- subsets

def random_subsets(n: int, n_subsets: int, fraction: float = 0.5, seed: int = 0,
                   labels: np.ndarray | None = None) -> np.ndarray:
    """Boolean masks of random training subsets, each of exactly ``round(fraction * n)`` images.

    Subset ``s`` is drawn from its own generator seeded ``[seed, s]``, so the first 32 subsets
    of a 64-subset run are the 32 subsets of a 32-subset run (and their models are reused).

    Args:
        n: training-set size.
        n_subsets: how many subsets.
        fraction: share of the training set in each subset (D-TRAK: α = 0.5).
        seed: seeds the draws.
        labels: optional (n,) class labels; each subset then keeps the class proportions
            (largest-remainder rounding), as D-TRAK's stratified subsets do.

    Returns:
        (n_subsets, n) bool array; row s marks the images in subset s.

    Raises:
        ValueError: for n < 2, n_subsets < 1, a fraction outside (0, 1) or one that gives an
            empty or full subset, or labels of the wrong shape.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 to draw proper subsets, got {n}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    size = round(fraction * n)
    if not 0 < size < n:
        raise ValueError(f"fraction {fraction} of {n} images gives a subset of {size}; it must be in 1..{n - 1}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels have shape {labels.shape}, expected ({n},)")
        counts = stratified_counts(labels, size)
        members = {c: np.flatnonzero(labels == c) for c in counts}
    masks = np.zeros((n_subsets, n), dtype=bool)
    for s in range(n_subsets):
        rng = np.random.default_rng([seed, s])
        if labels is None:
            masks[s, rng.choice(n, size=size, replace=False)] = True
        else:
            for c, k in counts.items():
                masks[s, rng.choice(members[c], size=k, replace=False)] = True
    return masks


def mask_digest(mask: np.ndarray) -> str:
    """16 hex digits identifying a boolean training mask (its length included)."""
    mask = np.asarray(mask, dtype=bool)
    h = hashlib.sha256(str(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- model output

def vae_sample_loss(model: BetaVAE, images: ImageSet | torch.Tensor, draws: int = 32, seed: int = 0) -> np.ndarray:
    """Negative β-ELBO (the VAE's training loss) of each image, with fixed Monte-Carlo noise.

    Image j's ``draws`` noise vectors come from ``np.random.default_rng([seed, j])``: they
    depend only on (seed, j) and the latent size, so every retrained model is measured on
    the same draws and its loss differences are not Monte-Carlo noise.

    Args:
        model: a β-VAE (put in eval mode here).
        images: uint8 images (an :class:`ImageSet` or a (N, C, H, W) tensor).
        draws: reparameterised samples of z per image.
        seed: seeds the noise.

    Returns:
        (N,) float64 losses (nats; lower = the model explains the image better).

    Raises:
        ValueError: for draws < 1 or images of the wrong shape.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    x_all = images.images if isinstance(images, ImageSet) else images
    cfg = model.config
    if tuple(x_all.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
        raise ValueError(f"images are {tuple(x_all.shape[1:])}; the VAE expects "
                         f"{(cfg.channels, cfg.image_size, cfg.image_size)}")
    model.eval()
    device = next(model.parameters()).device
    out = np.empty(len(x_all), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(x_all), LOSS_BATCH):
            stop = min(start + LOSS_BATCH, len(x_all))
            eps = np.stack([np.random.default_rng([seed, j]).standard_normal((draws, cfg.latent_dim),
                                                                              dtype=np.float32)
                            for j in range(start, stop)])
            x = to_float(x_all[start:stop].to(device))
            out[start:stop] = model.loss(x, eps=torch.from_numpy(eps).to(device)).double().cpu().numpy()
    if not np.isfinite(out).all():
        raise FloatingPointError("non-finite VAE losses; the model may have diverged")
    return out


def diffusion_sample_loss(model: ConditionalDiffusion, images: ImageSet | torch.Tensor, labels: np.ndarray,
                          timesteps: int = 10, draws: int = 1, seed: int = 0) -> np.ndarray:
    """Denoising loss (the diffusion model's training objective) of each image, with fixed steps and noise.

    The loss of image j is the model's prediction MSE (ε or v, whichever it was trained
    on) averaged over ``timesteps`` evenly spaced diffusion steps
    (:func:`~gmval.models.diffusion.evenly_spaced_timesteps`) × ``draws`` noise draws,
    conditional on ``labels[j]`` without label dropout. The noise comes from
    ``np.random.default_rng([seed, j])``, so every retrained model is measured on identical
    noisy inputs (D-TRAK seeds its ε per step likewise) and loss differences come from the
    weights alone.

    Args:
        model: the diffusion model (put in eval mode here; its EMA weights are what sample).
        images: uint8 images (an :class:`ImageSet` or a (N, C, H, W) tensor).
        labels: (N,) class of each image (a generated sample's: the class it was drawn for).
        timesteps: number of evenly spaced steps.
        draws: noise draws per image and step.
        seed: seeds the noise.

    Returns:
        (N,) float64 losses (lower = the model denoises the image better).

    Raises:
        ValueError: for timesteps or draws out of range, images of the wrong shape, or
            labels of the wrong shape or outside the model's classes.
    """
    from gmval.models.diffusion import evenly_spaced_timesteps

    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    cfg = model.config
    steps = evenly_spaced_timesteps(timesteps, cfg.train_timesteps)
    x_all = images.images if isinstance(images, ImageSet) else images
    if tuple(x_all.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
        raise ValueError(f"images are {tuple(x_all.shape[1:])}; the diffusion model expects "
                         f"{(cfg.channels, cfg.image_size, cfg.image_size)}")
    labels = np.asarray(labels)
    if labels.shape != (len(x_all),):
        raise ValueError(f"labels have shape {labels.shape}, expected ({len(x_all)},)")
    if labels.size and (labels.min() < 0 or labels.max() >= cfg.num_classes):
        raise ValueError(f"labels must be classes 0..{cfg.num_classes - 1}, got {labels.min()}..{labels.max()}")
    model.eval()
    device = next(model.parameters()).device
    noise_shape = (timesteps, draws, cfg.channels, cfg.canvas, cfg.canvas)
    per_batch = max(1, DIFFUSION_LOSS_COPIES // (timesteps * draws))
    out = np.empty(len(x_all), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(x_all), per_batch):
            stop = min(start + per_batch, len(x_all))
            noise = np.stack([np.random.default_rng([seed, j]).standard_normal(noise_shape, dtype=np.float32)
                              for j in range(start, stop)])
            x = to_float(x_all[start:stop].to(device))
            y = torch.from_numpy(labels[start:stop].astype(np.int64)).to(device)
            loss = model.fixed_loss(x, y, steps, torch.from_numpy(noise).to(device))
            out[start:stop] = loss.double().cpu().numpy()
    if not np.isfinite(out).all():
        raise FloatingPointError("non-finite diffusion losses; the model may have diverged")
    return out


# --------------------------------------------------------------------------- recipes

class Recipe(Protocol):
    """The model-specific half of :class:`SubsetTrainer`: how one kind of generator is trained and measured.

    Attributes:
        kind: short name of the model kind; it prefixes the run folders (``cf-<kind>-<hash>``).
        epochs: passes over each subset (the same for every subset, as in D-TRAK).
        batch_size: images per step.
    """

    kind: ClassVar[str]
    epochs: int
    batch_size: int

    def key(self) -> dict[str, Any]:
        """Everything besides the data and the training loop that decides the trained weights."""
        ...

    def fit(self, data: ImageSet, folder: Path, train_config: TrainConfig, progress: bool) -> nn.Module:
        """Train (or resume, or load) the model on ``data`` in ``folder``."""
        ...

    def generate(self, model: nn.Module, n: int, seed: int) -> ImageSet:
        """``n`` samples of ``model`` drawn from ``seed``, ids 0..n-1."""
        ...

    def loss_key(self, generated: ImageSet) -> dict[str, Any]:
        """What :meth:`sample_loss` depends on beyond the model, the images, the draws and the seed."""
        ...

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int) -> np.ndarray:
        """(m,) training loss of each generated sample under ``model``, with noise fixed by ``seed``."""
        ...


@dataclass(frozen=True)
class VAERecipe:
    """β-VAE retraining, measured by :func:`vae_sample_loss`.

    Attributes:
        config: architecture and objective.
        epochs: passes over each subset.
        batch_size: images per step.
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate.
    """

    kind: ClassVar[str] = "vae"
    config: VAEConfig
    epochs: int
    batch_size: int
    optimizer: str = "adam"
    lr: float = 1e-3

    def key(self) -> dict[str, Any]:
        """Architecture, optimizer and learning rate (the keys of the first VAE-only trainer, so its runs still load)."""
        return {"vae": asdict(self.config), "optimizer": self.optimizer, "lr": self.lr}

    def fit(self, data: ImageSet, folder: Path, train_config: TrainConfig, progress: bool) -> BetaVAE:
        """:func:`~gmval.models.vae.train_vae` with this recipe."""
        model, _ = train_vae(data, folder, self.config, train_config, optimizer=self.optimizer, lr=self.lr,
                             params={"counterfactual": True}, progress=progress)
        return model

    def generate(self, model: nn.Module, n: int, seed: int) -> ImageSet:
        """Decoded means of z ~ N(0, I) from ``seed``, unlabelled."""
        return ImageSet(model.generate(n, seed=seed), np.arange(n), name=f"cf-vae-seed{seed}")

    def loss_key(self, generated: ImageSet) -> dict[str, Any]:
        """Nothing beyond the draws and the seed."""
        return {}

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int) -> np.ndarray:
        """:func:`vae_sample_loss`."""
        return vae_sample_loss(model, generated, draws, seed)


@dataclass(frozen=True)
class DiffusionRecipe:
    """Class-conditional diffusion retraining (EMA weights), measured by :func:`diffusion_sample_loss`.

    Attributes:
        config: architecture and noise schedule.
        epochs: passes over each subset.
        batch_size: images per step.
        lr: Adam learning rate.
        ema_decay: decay of the weight average, which is the model that samples and is measured.
        sampling_steps / guidance_scale: DDIM steps and guidance of :meth:`generate`.
        loss_timesteps: evenly spaced steps of the measured loss.
    """

    kind: ClassVar[str] = "diffusion"
    config: DiffusionConfig
    epochs: int
    batch_size: int
    lr: float = 1e-3
    ema_decay: float = 0.995
    sampling_steps: int = 25
    guidance_scale: float = 2.0
    loss_timesteps: int = 10

    def key(self) -> dict[str, Any]:
        """Architecture, schedule, learning rate and EMA decay (sampling settings do not change the weights)."""
        return {"diffusion": asdict(self.config), "lr": self.lr, "ema_decay": self.ema_decay}

    def fit(self, data: ImageSet, folder: Path, train_config: TrainConfig, progress: bool) -> ConditionalDiffusion:
        """:func:`~gmval.models.diffusion.train_diffusion` with this recipe; returns the EMA model."""
        from gmval.models.diffusion import train_diffusion

        model, _ = train_diffusion(data, folder, self.config, train_config, lr=self.lr, ema_decay=self.ema_decay,
                                   sampling_steps=self.sampling_steps, guidance_scale=self.guidance_scale,
                                   params={"counterfactual": True}, progress=progress)
        return model

    def generate(self, model: nn.Module, n: int, seed: int) -> ImageSet:
        """Guided DDIM samples of balanced classes (sample i asks for class i mod #classes), labelled with them."""
        labels = np.arange(n) % self.config.num_classes
        return ImageSet(model.generate(n, seed=seed, labels=labels), np.arange(n), labels.astype(np.int64),
                        name=f"cf-diffusion-seed{seed}")

    def loss_key(self, generated: ImageSet) -> dict[str, Any]:
        """The loss's timesteps and the labels it conditions on (the images' fingerprint omits labels)."""
        labels = _check_labelled(generated)
        return {"timesteps": self.loss_timesteps,
                "labels": hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest()[:16]}

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int) -> np.ndarray:
        """:func:`diffusion_sample_loss` conditioned on the samples' labels."""
        return diffusion_sample_loss(model, generated, _check_labelled(generated), self.loss_timesteps, draws, seed)


def _check_labelled(generated: ImageSet) -> np.ndarray:
    if generated.labels is None:
        raise ValueError(f"{generated.name}: the conditional diffusion loss needs the class of every generated "
                         "sample (the labels it was generated for)")
    return generated.labels


def recipe_from_settings(settings: Mapping[str, Any], train: ImageSet) -> VAERecipe | DiffusionRecipe:
    """The recipe of a ``counterfactual`` profile entry: its ``vae`` or its ``diffusion`` block.

    Raises:
        ValueError: unless the entry has exactly one of the two.
    """
    kinds = [k for k in ("vae", "diffusion") if k in settings]
    if len(kinds) != 1:
        raise ValueError(f"a counterfactual entry needs exactly one recipe block, 'vae' or 'diffusion'; got {kinds}")
    c, h = train.shape[0], train.shape[1]
    r = settings[kinds[0]]
    if kinds[0] == "vae":
        config = VAEConfig(channels=c, image_size=h, latent_dim=r["latent_dim"], hidden=r["hidden"],
                           beta=r["beta"], likelihood=r["likelihood"])
        return VAERecipe(config, epochs=r["epochs"], batch_size=r["batch_size"], optimizer=r["optimizer"],
                         lr=r["lr"])
    from gmval.models.diffusion import DiffusionConfig

    if train.labels is None:
        raise ValueError(f"{train.name}: the conditional diffusion recipe needs a labelled training set")
    config = DiffusionConfig(channels=c, image_size=h, num_classes=int(train.labels.max()) + 1,
                             block_out_channels=r["block_out_channels"], attention=r["attention"],
                             layers_per_block=r["layers_per_block"], norm_groups=r["norm_groups"],
                             beta_schedule=r["beta_schedule"], prediction_type=r["prediction_type"],
                             p_uncond=r["p_uncond"])
    return DiffusionRecipe(config, epochs=r["epochs"], batch_size=r["batch_size"], lr=r["lr"],
                           ema_decay=r["ema_decay"], sampling_steps=r["sampling_steps"],
                           guidance_scale=r["guidance_scale"], loss_timesteps=settings["loss_timesteps"])


# --------------------------------------------------------------------------- retraining

@dataclass(frozen=True)
class SubsetTrainer:
    """Retrains one recipe (β-VAE or diffusion) on subsets of one training set, each model cached on disk.

    Attributes:
        train: the full (small) training set; masks index its positions.
        recipe: the model kind, its architecture and training settings, and its measured loss.
        seeds: training seeds; :meth:`subset_losses` averages the output over them.
        checkpoint_seconds: how often a running training saves its resumable checkpoint.
        root: folder of the model runs (default ``<data>/models/counterfactual``).
        cache: folder of the loss artefacts (default ``<data>/cache/counterfactual``).
        progress: show tqdm bars while training.
        full_keep_every: the model on the *whole* training set keeps weight snapshots every
            this many steps (VAE-TracIn needs them; 0: none). Snapshots do not change the
            weights, so that model is also the reference of :func:`retrain_without_topk`.
        precision: the resolved training precision of every run (``"fp32"`` or ``"bf16"``,
            see :class:`~gmval.models.training.TrainConfig`).
        workers: processes that train missing models side by side (:mod:`gmval.parallel`);
            the threads of this one are split between them. ``"auto"`` is resolved to a count
            (:func:`~gmval.parallel.resolve_workers`) on construction.
    """

    train: ImageSet
    recipe: Recipe
    seeds: tuple[int, ...] = (0,)
    checkpoint_seconds: float = 60.0
    root: Path = field(default_factory=lambda: paths.MODELS / "counterfactual")
    cache: Path | None = field(default_factory=lambda: paths.CACHE / "counterfactual")
    progress: bool = False
    full_keep_every: int = 0
    precision: str = "fp32"
    workers: int | str = 1

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must hold at least one training seed")
        object.__setattr__(self, "workers", resolve_workers(self.workers))  # frozen: "auto" becomes a count
        if self.recipe.epochs < 1 or self.recipe.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.recipe.epochs} and "
                             f"{self.recipe.batch_size}")

    @classmethod
    def from_profile(cls, profile: Profile = "default", key: str = "counterfactual",
                     root: Path | None = None, progress: bool = False) -> SubsetTrainer:
        """The recipe and training set of ``profile[key]``.

        Args:
            profile: a profile name or a profile dict.
            key: ``"counterfactual"`` (the β-VAE study) or ``"counterfactual_diffusion"``.
            root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
            progress: show tqdm bars while training.

        The entry's optional ``workers`` (default 1; ``"auto"``: one per CPU without a GPU)
        sets :attr:`workers`.

        Raises:
            ValueError: if the profile has no entry ``key``.
        """
        settings = profile_settings(profile)
        if key not in settings:
            raise ValueError(f"the profile has no counterfactual entry {key!r}")
        p = settings[key]
        train = training_set(p)
        recipe = recipe_from_settings(p, train)
        models = paths.MODELS if root is None else Path(root) / "models"
        cache = paths.CACHE if root is None else Path(root) / "cache"
        return cls(train=train, recipe=recipe, seeds=tuple(p["train_seeds"]),
                   checkpoint_seconds=p.get("checkpoint_seconds", 60.0), root=models / "counterfactual",
                   cache=cache / "counterfactual", progress=progress,
                   full_keep_every=p[recipe.kind].get("full_keep_every", 0),
                   precision=train_precision(p[recipe.kind]), workers=p.get("workers", 1))

    def full_mask(self) -> np.ndarray:
        """The mask of the whole training set (the model that draws the generated samples)."""
        return np.ones(len(self.train), dtype=bool)

    def train_config(self, mask: np.ndarray, seed: int) -> TrainConfig:
        """The training settings of the run on ``mask`` (snapshots only for the full set)."""
        keep_every = self.full_keep_every if bool(np.all(mask)) else 0
        return TrainConfig(epochs=self.recipe.epochs, batch_size=self.recipe.batch_size, seed=seed,
                           checkpoint_seconds=self.checkpoint_seconds, keep_every=keep_every,
                           precision=self.precision)

    def _check_mask(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self.train),):
            raise ValueError(f"a training mask must be a bool array of shape ({len(self.train)},), "
                             f"got {mask.dtype} {mask.shape}")
        if mask.sum() < 1:
            raise ValueError("a training mask must keep at least one image")
        return mask

    def folder(self, mask: np.ndarray, seed: int) -> Path:
        """Where the run on ``mask`` with ``seed`` lives (whether or not it is trained yet)."""
        mask = self._check_mask(mask)
        train = {k: v for k, v in asdict(self.train_config(mask, seed)).items() if k != "checkpoint_seconds"}
        params = {"data": self.train.fingerprint(), "mask": mask_digest(mask), "n_kept": int(mask.sum()),
                  **self.recipe.key(), "train": train}
        return self.root / artefact_key(f"cf-{self.recipe.kind}", params)

    def fit(self, mask: np.ndarray, seed: int | None = None) -> nn.Module:
        """The model trained on the images of ``mask``: loaded if done, resumed or trained otherwise.

        Args:
            mask: (n,) bool, the training images kept.
            seed: training seed (default: the first of :attr:`seeds`).

        Raises:
            ValueError: for a mask of the wrong shape or dtype, or an empty one.
        """
        mask = self._check_mask(mask)
        seed = self.seeds[0] if seed is None else seed
        data = self.train.subset(np.flatnonzero(mask), name=f"{self.train.name}-cf{mask_digest(mask)[:6]}")
        return self.recipe.fit(data, self.folder(mask, seed), self.train_config(mask, seed), self.progress)

    def generate(self, model: nn.Module, n: int, seed: int) -> ImageSet:
        """``n`` samples of ``model`` from ``seed`` (the recipe's sampler), ids 0..n-1."""
        return self.recipe.generate(model, n, seed)

    def _loss_params(self, mask: np.ndarray, seed: int, generated: ImageSet, draws: int,
                     loss_seed: int) -> dict[str, Any]:
        return {"model": self.folder(mask, seed).name, "generated": generated.fingerprint(), "draws": draws,
                "seed": loss_seed, **self.recipe.loss_key(generated)}

    def model_loss(self, mask: np.ndarray, seed: int, generated: ImageSet, draws: int, loss_seed: int) -> np.ndarray:
        """The recipe's sample loss of the model on ``mask`` with ``seed``, cached per model."""
        store = ArtifactStore(self.cache)
        params = self._loss_params(mask, seed, generated, draws, loss_seed)
        art = store.load("cf-loss", params)
        if art is None:
            loss = self.recipe.sample_loss(self.fit(mask, seed), generated, draws, loss_seed)
            art = store.save("cf-loss", params, arrays={"loss": loss})
        return np.asarray(art.array("loss", mmap=False))

    def model_losses(self, runs: Sequence[tuple[np.ndarray, int]], generated: ImageSet, draws: int,
                     loss_seed: int) -> list[np.ndarray]:
        """:meth:`model_loss` of each (mask, seed) run; the missing ones trained on :attr:`workers` processes."""
        store = ArtifactStore(self.cache)
        keys = [(mask_digest(self._check_mask(mask)), int(seed)) for mask, seed in runs]
        losses: dict[tuple[str, int], np.ndarray] = {}
        # One job per distinct run: two workers must never train into the same folder.
        missing: dict[tuple[str, int], tuple[np.ndarray, int]] = {}
        for key, (mask, seed) in zip(keys, runs, strict=True):
            if key in losses or key in missing:
                continue
            art = store.load("cf-loss", self._loss_params(mask, seed, generated, draws, loss_seed))
            if art is None:
                missing[key] = (mask, int(seed))
            else:
                losses[key] = np.asarray(art.array("loss", mmap=False))
        todo = list(missing)
        losses.update(zip(todo, run_jobs(
            _model_loss_job, [(self, mask, seed, generated, draws, loss_seed) for mask, seed in missing.values()],
            int(self.workers), describe=lambda i: f"{self.recipe.kind} retraining on mask {todo[i][0][:8]}, seed {todo[i][1]}"),
            strict=True))
        return [losses[key] for key in keys]

    def subset_losses(self, masks: np.ndarray, generated: ImageSet, draws: int = 32, seed: int = 0) -> np.ndarray:
        """(n_subsets, m) loss of each generated sample under each subset's model, averaged over :attr:`seeds`.

        Trains every missing model first (len(masks) × len(seeds) runs at most).
        """
        masks = np.asarray(masks)
        if masks.ndim != 2 or masks.shape[1] != len(self.train):
            raise ValueError(f"masks must be (n_subsets, {len(self.train)}), got {masks.shape}")
        losses = self.model_losses([(mask, s) for mask in masks for s in self.seeds], generated, draws, seed)
        return np.stack(losses).reshape(len(masks), len(self.seeds), len(generated)).mean(1)


def _model_loss_job(trainer: SubsetTrainer, mask: np.ndarray, seed: int, generated: ImageSet, draws: int,
                    loss_seed: int) -> np.ndarray:
    return trainer.model_loss(mask, seed, generated, draws, loss_seed)


def seed_agreement(trainer: SubsetTrainer, masks: np.ndarray, generated: ImageSet, draws: int,
                   loss_seed: int) -> np.ndarray | None:
    """Per-sample Spearman correlation, over the subsets, of the losses under the first two training seeds.

    If two seeds order the subsets alike, that order is a property of the subsets, which an
    attribution method can predict; the mean roughly bounds the LDS reachable at this level of
    training noise. None with a single training seed.

    Returns:
        (m,) correlations (NaN where one seed's losses are constant over the subsets), or None.
    """
    if len(trainer.seeds) < 2:
        return None
    a, b = (np.stack(trainer.model_losses([(mask, s) for mask in masks], generated, draws, loss_seed))
            for s in trainer.seeds[:2])
    rho, constant = _spearman_columns(a, b)
    return np.where(constant, np.nan, rho)


def training_set(settings: Mapping[str, Any]) -> ImageSet:
    """The small training set of a ``counterfactual`` profile entry (stratified subsample of MNIST train)."""
    from gmval.models.zoo import load_split

    full = load_split(settings["dataset"], "train")
    return subsample(full, settings["n_train"], seed=settings["seed"], stratified=True)


# --------------------------------------------------------------------------- attributions

def attribution_matrix(result: ValuationResult, n_train: int, column: str | None = None) -> np.ndarray:
    """A valuation as a dense (m generated × n train) score matrix; higher = helps produce sample j.

    * GMValuator (:class:`~gmval.valuator.ValuationResult`): entry (j, i) is the Eq. 6
      ``contribution`` of contributor i to generated image j, 0 for non-contributors. Pass
      ``column="weight"`` to drop the quality calibration (q_j only rescales row j, which
      Spearman ignores: both give the same LDS unless some q_j = 0).
    * VAE-TracIn and TRAK (:class:`~gmval.baselines.vae_tracin.TracInResult` and its
      subclass :class:`~gmval.baselines.trak.TRAKResult`): the full ``scores`` (n_scored, m),
      transposed; training images not scored get 0.

    Args:
        result: a valuation of ``n_train`` training images.
        n_train: training-set size (the number of columns).
        column: the contributors' column to use (GMValuator only; default ``"contribution"``).

    Raises:
        ValueError: if the result refers to training indices outside 0..n_train-1, was made
            for another training-set size, or holds non-finite scores.
    """
    from gmval.baselines.vae_tracin import TracInResult

    recorded = result.config.get("n_train")
    if recorded is not None and int(recorded) != n_train:
        raise ValueError(f"the result values {recorded} training images, but n_train={n_train}")
    if isinstance(result, TracInResult):
        if column is not None:
            raise ValueError("column applies to GMValuator results only; gradient baselines have one score matrix")
        rows = np.asarray(result.scored_index)
        if rows.size and (rows.min() < 0 or rows.max() >= n_train):
            raise ValueError(f"{result.config.get('method', 'the baseline')} scored training index {rows.max()} "
                             f"outside 0..{n_train - 1}")
        dense = np.zeros((result.scores.shape[1], n_train))
        dense[:, rows] = result.scores.T
    else:
        column = column or "contribution"
        c = result.contributors
        if column not in c:
            raise ValueError(f"the contributors table has no column {column!r}")
        gen, idx = c["generated_index"].to_numpy(), c["train_index"].to_numpy()
        if idx.size and (idx.min() < 0 or idx.max() >= n_train):
            raise ValueError(f"a contributor has training index {idx.max()} outside 0..{n_train - 1}")
        m = int(result.config.get("n_generated", gen.max() + 1 if gen.size else 0))
        dense = np.zeros((m, n_train))
        np.add.at(dense, (gen, idx), c[column].to_numpy(dtype=np.float64))
    if not np.isfinite(dense).all():
        raise ValueError("the attribution scores hold NaN or infinite values")
    return dense


def pixel_attribution(train: ImageSet, generated: ImageSet, k: int | None = None) -> np.ndarray:
    """Raw-pixel nearest-neighbour attribution, (m, n); higher = closer in pixel space.

    Args:
        train: training images.
        generated: generated images (same shape).
        k: None scores every training image by ``-‖x_i − x̂_j‖₂`` (pixels in [0, 1]);
            an integer scores the k nearest 1 and the rest 0 (a top-k indicator).

    Raises:
        ValueError: for images of different shapes or k outside 1..n.
    """
    if train.shape != generated.shape:
        raise ValueError(f"training images are {train.shape}, generated {generated.shape}")
    if k is not None and not 1 <= k <= len(train):
        raise ValueError(f"k={k} must be between 1 and the training-set size {len(train)}")
    a = to_float(generated.images).flatten(1).double()
    b = to_float(train.images).flatten(1).double()
    # Exact differences, not the |a|²+|b|²-2ab shortcut: an exact copy must score exactly 0.
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    if k is None:
        return -d
    top = np.argsort(d, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(d)
    np.put_along_axis(out, top, 1.0, axis=1)
    return out


def gmvaluator_attributions(train: ImageSet, generated: ImageSet, encoder: Sequence[Any], k: int,
                            temperature: float | str, distances: Sequence[Sequence[Any]],
                            qualities: Sequence[Sequence[Any]]) -> tuple[dict[str, np.ndarray],
                                                                         dict[str, tuple[str, str]],
                                                                         dict[str, float]]:
    """Dense attributions of every GMValuator variant (each distance × quality pair), as a profile lists them.

    One valuator is fitted on ``train`` (the recall index is built once); each variant swaps its
    re-ranking distance and quality model.

    Args:
        train: the training set the models were trained on.
        generated: the generated samples.
        encoder: ``[name, kwargs]`` of the recall encoder.
        k: contributors per sample.
        temperature: T of exp(-d/T), or ``"auto"``.
        distances / qualities: ``[name, kwargs]`` pairs.

    Returns:
        (label -> (m, n) scores, label -> (distance, quality), label -> seconds to value),
        labelled ``"GMValuator (<distance>)"`` without and ``"GMValuator (<distance>, <quality>)"``
        with a quality model.
    """
    from gmval.distances import create_distance
    from gmval.encoders import create_encoder
    from gmval.quality import create_quality_model
    from gmval.valuator import Valuator

    enc_name, enc_kwargs = encoder
    valuator = Valuator(create_encoder(enc_name, **enc_kwargs), k=k, temperature=temperature,
                        progress=False).fit(train)
    methods: dict[str, np.ndarray] = {}
    settings: dict[str, tuple[str, str]] = {}
    seconds: dict[str, float] = {}
    for dist_name, dist_kwargs in distances:
        valuator.distance = create_distance(dist_name, **dist_kwargs)
        for q_name, q_kwargs in qualities:
            valuator.quality = create_quality_model(q_name, **q_kwargs)
            start = time.perf_counter()
            res = valuator.value(generated)
            label = f"GMValuator ({dist_name})" if q_name == "none" else f"GMValuator ({dist_name}, {q_name})"
            methods[label] = attribution_matrix(res, len(train))
            settings[label] = (dist_name, q_name)
            seconds[label] = time.perf_counter() - start
    return methods, settings, seconds


# --------------------------------------------------------------------------- LDS

@dataclass(frozen=True)
class LDSResult:
    """The linear datamodeling score of one attribution method.

    Attributes:
        mean: mean over generated samples of the per-sample Spearman correlation.
        low / high: bootstrap percentile interval of the mean (resampling generated samples).
        per_sample: (m,) Spearman correlation of each generated sample (0 where undefined).
        n_subsets: subsets (retrained models) the correlations run over.
        n_constant: samples whose prediction was constant over the subsets (counted as 0).
        confidence: the interval's level.
        n_boot: bootstrap resamples.
    """

    mean: float
    low: float
    high: float
    per_sample: np.ndarray
    n_subsets: int
    n_constant: int
    confidence: float
    n_boot: int

    def row(self) -> dict[str, float | int]:
        """The scalar fields, for a results table."""
        return {"lds": self.mean, "low": self.low, "high": self.high, "n_subsets": self.n_subsets,
                "n_samples": len(self.per_sample), "n_constant": self.n_constant}


def _spearman_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman correlation of each column pair of (s, m) arrays, and which columns were constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    denom = np.sqrt((ra ** 2).sum(axis=0) * (rb ** 2).sum(axis=0))
    constant = denom == 0
    rho = np.where(constant, 0.0, (ra * rb).sum(axis=0) / np.where(constant, 1.0, denom))
    return rho, constant


def lds(scores: np.ndarray, masks: np.ndarray, losses: np.ndarray, n_boot: int = 1000, seed: int = 0,
        confidence: float = 0.95) -> LDSResult:
    """Linear datamodeling score (D-TRAK) of an attribution, with a bootstrap interval.

    For generated sample j and subset s, the prediction is Σ_{i∈S_s} scores[j, i] and the
    measurement is ``-losses[s, j]`` (higher = the model explains sample j better), so a
    method whose high scores mark helpful images gets a positive LDS. LDS_j is the Spearman
    correlation over the subsets; the result is its mean over samples. The interval is a
    percentile bootstrap that resamples the subsets and the generated samples with
    replacement, jointly, ``n_boot`` times.

    Args:
        scores: (m, n) attribution scores, higher = helps produce sample j.
        masks: (s, n) bool subsets (from :func:`random_subsets`), in the scores' training order.
        losses: (s, m) loss of sample j under the model trained on subset s.
        n_boot: bootstrap resamples.
        seed: seeds the bootstrap.
        confidence: level of the interval.

    Raises:
        ValueError: for mismatched shapes, non-bool masks, fewer than 3 subsets, non-finite
            scores or losses, n_boot < 1, or a confidence outside (0, 1); the message names
            the offending argument.
    """
    scores, masks, losses = np.asarray(scores, dtype=np.float64), np.asarray(masks), np.asarray(losses, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (m generated, n train), got shape {scores.shape}")
    m, n = scores.shape
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be (n_subsets, {n}) to match scores {scores.shape}, got {masks.shape}")
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean, got {masks.dtype}")
    s = masks.shape[0]
    if s < 3:
        raise ValueError(f"LDS needs at least 3 subsets for a rank correlation, got {s}")
    if losses.shape != (s, m):
        raise ValueError(f"losses must be (n_subsets, m generated) = {(s, m)}, got {losses.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    if not np.isfinite(losses).all():
        raise ValueError(f"losses hold {int((~np.isfinite(losses)).sum())} NaN or infinite values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    predicted = masks.astype(np.float64) @ scores.T  # (s, m)
    rho, constant = _spearman_columns(predicted, -losses)
    rng = np.random.default_rng(seed)
    # Subsets and samples are resampled together: every sample is measured on the same
    # retrained models, so a model that is better or worse for all samples at once moves all
    # per-sample correlations alike, and resampling samples alone would hide that variance.
    boot = np.empty(n_boot)
    for b in range(n_boot):
        rows, cols = rng.integers(0, s, size=s), rng.integers(0, m, size=m)
        boot[b] = _spearman_columns(predicted[rows][:, cols], -losses[rows][:, cols])[0].mean()
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return LDSResult(mean=float(rho.mean()), low=float(low), high=float(high), per_sample=rho, n_subsets=s,
                     n_constant=int(constant.sum()), confidence=confidence, n_boot=n_boot)


def lds_table(methods: Mapping[str, np.ndarray], settings: Mapping[str, tuple[str, str]], masks: np.ndarray,
              losses: np.ndarray, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One :func:`lds` row per method: ``method``, ``distance``, ``quality`` and :meth:`LDSResult.row`.

    Args:
        methods: label -> (m, n) scores.
        settings: label -> (distance, quality) descriptions; a label missing here gets ("-", "none").
        masks / losses / n_boot / seed: as :func:`lds` (the same bootstrap seed for every method).
    """
    rows = []
    for label, scores in methods.items():
        dist_name, q_name = settings.get(label, ("-", "none"))
        res = lds(scores, masks, losses, n_boot=n_boot, seed=seed)
        rows.append({"method": label, "distance": dist_name, "quality": q_name, **res.row()})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- top-k removal

def _top_k(row: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # Ties (e.g. the zeros of every non-contributor) are broken at random, not by index,
    # so a k beyond a method's contributors removes random images rather than low indices.
    jitter = rng.permutation(len(row))
    order = np.lexsort((jitter, -row))
    return order[:k]


def retrain_without_topk(trainer: SubsetTrainer, methods: Mapping[str, np.ndarray], generated: ImageSet,
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
        methods: name -> (m, n) score matrix (higher = helps produce sample j).
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
            name ``"random"``, or a score matrix of the wrong shape or with NaNs.
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
    for name, sc in methods.items():
        sc = np.asarray(sc)
        if sc.shape != (m, n):
            raise ValueError(f"scores of {name!r} have shape {sc.shape}, expected {(m, n)}")
        if not np.isfinite(sc).all():
            raise ValueError(f"scores of {name!r} hold NaN or infinite values")
    full = trainer.full_mask()
    base = trainer.model_loss(full, train_seed, generated, draws, loss_seed)
    cases, masks = [], []
    for j in samples:
        j = int(j)
        for k in ks:
            k = int(k)
            removals = {name: _top_k(np.asarray(sc)[j], k, np.random.default_rng([seed, j, k, 1]))
                        for name, sc in methods.items()}
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
