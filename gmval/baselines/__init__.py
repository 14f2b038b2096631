"""Baselines the paper compares GMValuator with, and the controls, each an :class:`~gmval.attribution.Attributor`.

* :mod:`~gmval.baselines.vae_tracin`: VAE-TracIn (Kong & Chaudhuri 2021), gradient influence
  summed over a β-VAE's training snapshots.
* :mod:`~gmval.baselines.if4gan`: IF4GAN (Terashita et al. 2021), the influence of each
  training image on a GAN's metric through traced SGD steps.
* :mod:`~gmval.baselines.trak`: TRAK (Park et al. 2023) with D-TRAK's diffusion loss,
  randomly projected loss gradients of the final model(s) under a linearised-model inverse.
* :mod:`~gmval.baselines.pixel`: raw-pixel nearest neighbours.
* :mod:`~gmval.baselines.random_scores`: random scores, the control that predicts nothing.
* :mod:`~gmval.baselines.gradients`: what the gradient baselines share (per-sample gradients,
  fixed noise, random projection).
"""

from gmval.baselines.if4gan import (
    IF4GAN,
    EvalMetric,
    IF4GANResult,
    Influence,
    TraceWindow,
    if4gan_influence,
    log_inception_score,
    replay_metric,
)
from gmval.baselines.pixel import PixelNearest, pixel_attribution
from gmval.baselines.random_scores import RandomScores
from gmval.baselines.trak import TRAK, DiffusionLoss, VAELoss, trak_scores
from gmval.baselines.vae_tracin import VAETracIn

__all__ = ["IF4GAN", "TRAK", "DiffusionLoss", "EvalMetric", "IF4GANResult", "Influence", "PixelNearest",
           "RandomScores", "TraceWindow", "VAELoss", "VAETracIn", "if4gan_influence",
           "log_inception_score", "pixel_attribution", "replay_metric", "trak_scores"]
