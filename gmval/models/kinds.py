"""The model kinds (β-VAE, GAN, diffusion) in one registry, shared by the zoo and the counterfactual retraining.

A :class:`ModelKind` says, for one kind of generator:

* :meth:`~ModelKind.config`: its architecture config from resolved settings (scalars, not
  per-dataset maps) and the training set (channels, size, classes);
* :meth:`~ModelKind.hyper`: the optimiser settings that decide its weights (they enter the
  run folders' keys), and :meth:`~ModelKind.sampling` the settings that only shape sampling;
* :meth:`~ModelKind.train` / :meth:`~ModelKind.sampler`: train (or resume, or load) a run,
  and rebuild an untrained sampler from a run's recorded config;
* its losses with fixed noise: :meth:`~ModelKind.sample_loss`, the output the counterfactual
  study measures on each retrained model, and :meth:`~ModelKind.gradient_loss`, what TRAK
  differentiates. A kind without them (the GAN) cannot be retrained there or valued by TRAK.

``diffusers``, the counterfactual losses and TRAK are imported only when a method needs them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from torch import nn

from gmval.images import ImageSet
from gmval.models.gan import DCGANGenerator, GANConfig, train_gan
from gmval.models.generator import Generator
from gmval.models.training import TrainConfig
from gmval.models.vae import BetaVAE, VAEConfig, train_vae

if TYPE_CHECKING:
    from gmval.baselines.trak import GradientLoss


def num_classes(data: ImageSet) -> int:
    """Classes of a labelled set: its class names, else its largest label + 1.

    Raises:
        ValueError: for an unlabelled set.
    """
    if data.labels is None:
        raise ValueError(f"{data.name}: a conditional model needs a labelled training set")
    return len(data.classes) if data.classes else int(data.labels.max()) + 1


class ModelKind(ABC):
    """How one kind of generator is configured, trained, rebuilt and measured.

    Attributes:
        name: the kind's name; also its module ``gmval.models.<name>``.
        conditional: whether its samples are drawn for given classes.
        retrainable: whether it has the fixed-noise losses of the counterfactual study and TRAK.
    """

    name: ClassVar[str]
    conditional: ClassVar[bool] = False
    retrainable: ClassVar[bool] = False

    def recipe(self) -> int:
        """The recipe version of the kind's code (``RECIPE`` of its module), part of the zoo's keys."""
        # Imported by name: the diffusion module pulls in diffusers, which VAE and GAN users never need.
        return importlib.import_module(f"gmval.models.{self.name}").RECIPE

    @abstractmethod
    def config(self, settings: Mapping[str, Any], train: ImageSet) -> Any:
        """The architecture config for ``train``'s images from resolved ``settings``."""

    @abstractmethod
    def hyper(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The optimiser settings that decide the weights."""

    def sampling(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Settings of the trained model's sampler that do not change its weights (none by default)."""
        return {}

    @abstractmethod
    def train(self, data: ImageSet, folder: Path, config: Any, train_config: TrainConfig, hyper: Mapping[str, Any],
              sampling: Mapping[str, Any], params: dict[str, Any], progress: bool) -> Generator:
        """Train (or resume, or load) a run on ``data`` in ``folder``; the model that samples."""

    @abstractmethod
    def sampler(self, config: Mapping[str, Any], sampling: Mapping[str, Any]) -> Generator:
        """An untrained sampling model with a run's recorded ``config`` (its ``params.json`` entry)."""

    def loss_settings(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The measured loss's settings in a counterfactual profile entry (none by default)."""
        return {}

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int,
                    loss: Mapping[str, Any]) -> np.ndarray:
        """(m,) training loss of each generated sample under ``model``, with noise fixed by ``seed``."""
        raise ValueError(f"a {self.name} has no fixed-noise sample loss to measure retrained models with")

    def loss_key(self, generated: ImageSet, loss: Mapping[str, Any]) -> dict[str, Any]:
        """What :meth:`sample_loss` depends on beyond the model, the images, the draws and the seed."""
        return {}

    def gradient_loss(self, settings: Mapping[str, Any]) -> GradientLoss:
        """TRAK's per-image loss of this kind from its settings (``draws``, ``seed``, ...)."""
        raise ValueError(f"TRAK has no loss for a {self.name}")


class VAEKind(ModelKind):
    """The β-VAE (:mod:`gmval.models.vae`), measured by its negative β-ELBO."""

    name = "vae"
    retrainable = True

    def config(self, settings: Mapping[str, Any], train: ImageSet) -> VAEConfig:
        c, h, _ = train.shape
        return VAEConfig(channels=c, image_size=h, latent_dim=settings["latent_dim"],
                         hidden=settings["hidden"], beta=settings["beta"],
                         likelihood=settings["likelihood"])

    def hyper(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"optimizer": settings["optimizer"], "lr": settings["lr"]}

    def train(self, data: ImageSet, folder: Path, config: VAEConfig, train_config: TrainConfig,
              hyper: Mapping[str, Any], sampling: Mapping[str, Any], params: dict[str, Any],
              progress: bool) -> BetaVAE:
        model, _ = train_vae(data, folder, config, train_config, optimizer=hyper["optimizer"], lr=hyper["lr"],
                             params=params, progress=progress)
        return model

    def sampler(self, config: Mapping[str, Any], sampling: Mapping[str, Any]) -> BetaVAE:
        return BetaVAE(VAEConfig(**config))

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int,
                    loss: Mapping[str, Any]) -> np.ndarray:
        """:func:`~gmval.counterfactual.losses.vae_sample_loss`."""
        from gmval.counterfactual.losses import vae_sample_loss

        return vae_sample_loss(model, generated, draws, seed)

    def gradient_loss(self, settings: Mapping[str, Any]) -> GradientLoss:
        """:class:`~gmval.baselines.trak.VAELoss` with ``draws`` and ``seed``."""
        from gmval.baselines.trak import VAELoss

        return VAELoss(draws=settings["draws"], seed=settings["seed"])


class GANKind(ModelKind):
    """The DCGAN (:mod:`gmval.models.gan`); no likelihood, so no fixed-noise loss."""

    name = "gan"

    def config(self, settings: Mapping[str, Any], train: ImageSet) -> GANConfig:
        c, h, _ = train.shape
        return GANConfig(channels=c, image_size=h)

    def hyper(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        # ``augment`` enters the key only when set, so the GANs without it keep their keys and committed weights.
        augment = {"augment": settings["augment"]} if settings["augment"] else {}
        return {"lr": settings["lr"], "ema_decay": settings["ema_decay"], **augment}

    def train(self, data: ImageSet, folder: Path, config: GANConfig, train_config: TrainConfig,
              hyper: Mapping[str, Any], sampling: Mapping[str, Any], params: dict[str, Any],
              progress: bool) -> DCGANGenerator:
        model, _ = train_gan(data, folder, config, train_config, lr=hyper["lr"], ema_decay=hyper["ema_decay"],
                             augment=hyper.get("augment", ""), params=params, progress=progress)
        return model

    def sampler(self, config: Mapping[str, Any], sampling: Mapping[str, Any]) -> DCGANGenerator:
        return DCGANGenerator(GANConfig(**config))


class DiffusionKind(ModelKind):
    """The class-conditional diffusion model (:mod:`gmval.models.diffusion`), measured by its denoising loss."""

    name = "diffusion"
    conditional = True
    retrainable = True

    def config(self, settings: Mapping[str, Any], train: ImageSet) -> Any:
        from gmval.models.diffusion import DiffusionConfig

        c, h, _ = train.shape
        return DiffusionConfig(channels=c, image_size=h, num_classes=num_classes(train),
                               block_out_channels=settings["block_out_channels"], attention=settings["attention"],
                               layers_per_block=settings["layers_per_block"], norm_groups=settings["norm_groups"],
                               beta_schedule=settings["beta_schedule"], prediction_type=settings["prediction_type"],
                               p_uncond=settings["p_uncond"])

    def hyper(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"lr": settings["lr"], "ema_decay": settings["ema_decay"]}

    def sampling(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """DDIM steps and guidance scale."""
        return {"sampling_steps": settings["sampling_steps"], "guidance_scale": float(settings["guidance_scale"])}

    def train(self, data: ImageSet, folder: Path, config: Any, train_config: TrainConfig, hyper: Mapping[str, Any],
              sampling: Mapping[str, Any], params: dict[str, Any], progress: bool) -> Generator:
        """:func:`~gmval.models.diffusion.train_diffusion`; returns the EMA model."""
        from gmval.models.diffusion import train_diffusion

        model, _ = train_diffusion(data, folder, config, train_config, lr=hyper["lr"], ema_decay=hyper["ema_decay"],
                                   sampling_steps=sampling["sampling_steps"],
                                   guidance_scale=sampling["guidance_scale"], params=params, progress=progress)
        return model

    def sampler(self, config: Mapping[str, Any], sampling: Mapping[str, Any]) -> Generator:
        from gmval.models.diffusion import ConditionalDiffusion, DiffusionConfig

        config = DiffusionConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
        return ConditionalDiffusion(config, sampling_steps=sampling["sampling_steps"],
                                    guidance_scale=sampling["guidance_scale"])

    def loss_settings(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """``loss_timesteps``: evenly spaced steps of the measured denoising loss."""
        return {"timesteps": entry["loss_timesteps"]}

    def sample_loss(self, model: nn.Module, generated: ImageSet, draws: int, seed: int,
                    loss: Mapping[str, Any]) -> np.ndarray:
        """:func:`~gmval.counterfactual.losses.diffusion_sample_loss` conditioned on the samples' labels."""
        from gmval.counterfactual.losses import diffusion_sample_loss, drawn_classes

        return diffusion_sample_loss(model, generated, drawn_classes(generated), loss["timesteps"], draws, seed)

    def loss_key(self, generated: ImageSet, loss: Mapping[str, Any]) -> dict[str, Any]:
        """The loss's timesteps and the labels it conditions on (the images' fingerprint omits labels)."""
        from gmval.counterfactual.losses import labels_digest

        return {"timesteps": loss["timesteps"], "labels": labels_digest(generated)}

    def gradient_loss(self, settings: Mapping[str, Any]) -> GradientLoss:
        """:class:`~gmval.baselines.trak.DiffusionLoss` with ``timesteps``, ``draws`` and ``seed``."""
        from gmval.baselines.trak import DiffusionLoss

        return DiffusionLoss(timesteps=settings["timesteps"], draws=settings["draws"], seed=settings["seed"])


#: Every model kind by name.
KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (VAEKind(), GANKind(), DiffusionKind())}


def model_kind(name: str) -> ModelKind:
    """The kind registered as ``name``.

    Raises:
        KeyError: for an unknown kind; the message lists the known ones.
    """
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown model kind {name!r}; available: {', '.join(KINDS)}") from None
