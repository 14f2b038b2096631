"""Retraining one model kind on subsets of one training set: the recipe, the trainer and its worker jobs.

Every retrained model is a training folder (see :mod:`gmval.models.training`) under
``<data>/models/counterfactual/cf-<kind>-<hash>`` (``cf-vae-…``, ``cf-diffusion-…``), the hash
covering the subset mask, the training set's fingerprint, the architecture and every training
setting, so a rerun loads instead of training and an interrupted training resumes from its
checkpoint. Per-model sample losses are artefacts in ``<data>/cache/counterfactual``. Missing
models are trained side by side on worker processes (:mod:`gmval.parallel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from gmval import paths
from gmval.counterfactual.subsets import mask_digest, training_set
from gmval.images import ImageSet
from gmval.models.kinds import KINDS, model_kind
from gmval.models.training import TrainConfig, train_precision
from gmval.parallel import resolve_workers, run_jobs
from gmval.profiles import Profile, profile_settings
from gmval.store import ArtifactStore, artefact_key


@dataclass(frozen=True)
class Recipe:
    """How one model kind is trained on every subset alike, and the loss it is measured with.

    The kind itself (:mod:`gmval.models.kinds`) builds, trains and measures the model; the
    recipe holds its settings.

    Attributes:
        kind: a model kind with a measured loss (``"vae"`` or ``"diffusion"``); it prefixes
            the run folders (``cf-<kind>-<hash>``).
        config: the architecture config.
        epochs: passes over each subset (the same for every subset, as in D-TRAK).
        batch_size: images per step.
        hyper: the optimiser settings that decide the weights (:meth:`ModelKind.hyper
            <gmval.models.kinds.ModelKind.hyper>`).
        sampling: the trained model's sampler settings (diffusion: DDIM steps, guidance).
        loss: the measured loss's settings (diffusion: ``timesteps``).

    Raises:
        ValueError: for a kind without a measured loss, or epochs or batch_size < 1.
    """

    kind: str
    config: Any
    epochs: int
    batch_size: int
    hyper: Mapping[str, Any]
    sampling: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not model_kind(self.kind).retrainable:
            raise ValueError(f"a {self.kind} has no measured loss, so it cannot be retrained for the counterfactual "
                             f"study; retrainable kinds: {', '.join(_retrainable())}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")

    def key(self) -> dict[str, Any]:
        """Architecture and optimiser settings (sampling settings do not change the weights).

        The layout, ``{kind: config, **hyper}``, is the one of the first per-kind recipes, so their runs still load.
        """
        return {self.kind: asdict(self.config), **self.hyper}

    def fit(self, data: ImageSet, folder: Path, train_config: TrainConfig, progress: bool) -> nn.Module:
        """Train (or resume, or load) the model on ``data`` in ``folder``; the model that samples and is measured."""
        return model_kind(self.kind).train(data, folder, self.config, train_config, self.hyper, self.sampling,
                                           params={"counterfactual": True}, progress=progress)

    def generate(self, model: nn.Module, n: int, seed: int) -> ImageSet:
        """``n`` samples of ``model`` from ``seed``, ids 0..n-1; a conditional model's are drawn for
        balanced classes (sample i for class i mod #classes) and labelled with them."""
        name = f"cf-{self.kind}-seed{seed}"
        if not model.conditional:
            return ImageSet(model.generate(n, seed=seed), np.arange(n), name=name)
        labels = np.arange(n) % model.num_classes
        return ImageSet(model.generate(n, seed=seed, labels=labels), np.arange(n), labels.astype(np.int64),
                        name=name)

    def loss_key(self, generated: ImageSet) -> dict[str, Any]:
        """What :meth:`sample_loss` depends on beyond the model, the images, the draws and the seed."""
        return model_kind(self.kind).loss_key(generated, self.loss)

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int) -> np.ndarray:
        """(m,) measured loss of each generated sample under ``model``, with noise fixed by ``seed``."""
        return model_kind(self.kind).sample_loss(model, generated, draws, seed, self.loss)


def _retrainable() -> list[str]:
    return [name for name, kind in KINDS.items() if kind.retrainable]


def recipe_from_settings(settings: Mapping[str, Any], train: ImageSet) -> Recipe:
    """The recipe of a ``counterfactual`` profile entry: its one block named after a retrainable kind.

    Raises:
        ValueError: unless the entry has exactly one such block (``vae`` or ``diffusion``), or
            for a conditional kind and an unlabelled training set.
    """
    kinds = [name for name in _retrainable() if name in settings]
    if len(kinds) != 1:
        raise ValueError(f"a counterfactual entry needs exactly one recipe block, one of {_retrainable()}; "
                         f"got {kinds}")
    kind, block = model_kind(kinds[0]), settings[kinds[0]]
    return Recipe(kind.name, kind.config(block, train), epochs=block["epochs"], batch_size=block["batch_size"],
                  hyper=kind.hyper(block), sampling=kind.sampling(block), loss=kind.loss_settings(settings))


@dataclass(frozen=True)
class SubsetTrainer:
    """Retrains one recipe on subsets of one training set, each model cached on disk.

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
            weights, so that model is also the reference of
            :func:`~gmval.counterfactual.removal.retrain_without_topk`.
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

    @classmethod
    def from_profile(cls, profile: Profile = "default", key: str = "counterfactual",
                     root: Path | None = None, progress: bool = False) -> SubsetTrainer:
        """The recipe and training set of ``profile[key]``.

        Args:
            profile: a profile name or a profile dict.
            key: ``"counterfactual"`` (the β-VAE study) or ``"counterfactual_diffusion"``.
            root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
            progress: show tqdm bars while training.

        The entry's ``workers`` (``"auto"``: one per CPU without a GPU) sets :attr:`workers`.

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
                   checkpoint_seconds=p["checkpoint_seconds"], root=models / "counterfactual",
                   cache=cache / "counterfactual", progress=progress,
                   full_keep_every=p[recipe.kind]["full_keep_every"],
                   precision=train_precision(p[recipe.kind]), workers=p["workers"])

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
            int(self.workers),
            describe=lambda i: f"{self.recipe.kind} retraining on mask {todo[i][0][:8]}, seed {todo[i][1]}"),
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
