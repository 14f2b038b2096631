"""Baselines the paper compares GMValuator with, in the same result format.

* :mod:`~gmval.baselines.vae_tracin`: VAE-TracIn (Kong & Chaudhuri 2021), gradient influence
  summed over a β-VAE's training snapshots.
* :mod:`~gmval.baselines.if4gan`: IF4GAN (Terashita et al. 2021), the influence of each
  training image on a GAN's metric through traced SGD steps.
* :mod:`~gmval.baselines.trak`: TRAK (Park et al. 2023) with D-TRAK's diffusion loss,
  randomly projected loss gradients of the final model(s) under a linearised-model inverse.
"""

from gmval.baselines.if4gan import (
    EvalMetric,
    IF4GANResult,
    Influence,
    TraceWindow,
    if4gan_influence,
    if4gan_values,
    log_inception_score,
    replay_metric,
)
from gmval.baselines.trak import TRAK, DiffusionLoss, TRAKResult, VAELoss, trak_scores
from gmval.baselines.vae_tracin import TracInResult, VAETracIn

__all__ = ["TRAK", "DiffusionLoss", "EvalMetric", "IF4GANResult", "Influence", "TRAKResult", "TracInResult",
           "TraceWindow", "VAELoss", "VAETracIn", "if4gan_influence", "if4gan_values", "log_inception_score",
           "replay_metric", "trak_scores"]
