"""Generative models trained here (no pretrained generator is downloadable offline) and their tools.

* :mod:`~gmval.models.vae`: the paper's β-VAE (Table 12), with a per-image ``loss``.
* :mod:`~gmval.models.gan`: the paper's MNIST GAN / DCGAN (Table 11).
* :mod:`~gmval.models.diffusion`: a class-conditional diffusers UNet with classifier-free guidance.
* :mod:`~gmval.models.classifier`: a small CNN per dataset, to label samples and embed them.
* :mod:`~gmval.models.fid`: Fréchet distance in the classifier's feature space.
* :mod:`~gmval.models.training`: the shared loop (seeded, atomic checkpoints, exact resume).
* :mod:`~gmval.models.zoo`: the named generators the experiments need, cached.

``diffusers`` is imported only when a diffusion model is used (it takes seconds).
"""

from __future__ import annotations

from typing import Any

from gmval.models.classifier import Classifier, ClassifierConfig, train_classifier
from gmval.models.fid import classifier_frechet_distance, frechet_distance
from gmval.models.gan import DCGANDiscriminator, DCGANGenerator, GANConfig, GANTask, train_gan
from gmval.models.generator import Generator
from gmval.models.training import TrainConfig, TrainResult, list_snapshots, load_weights, train
from gmval.models.vae import BetaVAE, VAEConfig, train_vae
from gmval.models.zoo import (
    GENERATORS,
    TrainingData,
    class_halves,
    generator_folder,
    generator_names,
    get_classifier,
    get_generator,
    quality,
    sample,
    train_all,
    training_data,
)

_LAZY = {"ConditionalDiffusion", "DiffusionConfig", "train_diffusion"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from gmval.models import diffusion

        return getattr(diffusion, name)
    raise AttributeError(f"module 'gmval.models' has no attribute {name!r}")


__all__ = [
    "GENERATORS", "BetaVAE", "Classifier", "ClassifierConfig", "ConditionalDiffusion", "DCGANDiscriminator",
    "DCGANGenerator", "DiffusionConfig", "GANConfig", "GANTask", "Generator", "TrainConfig", "TrainResult",
    "TrainingData", "VAEConfig", "class_halves", "classifier_frechet_distance", "frechet_distance", "generator_folder",
    "generator_names", "get_classifier", "get_generator", "list_snapshots", "load_weights", "quality", "sample",
    "train", "train_all", "train_classifier", "train_diffusion", "train_gan", "train_vae", "training_data",
]
