"""The output each retrained model is measured on: its own training loss on the generated samples, noise fixed.

* :func:`vae_sample_loss`: a β-VAE's negative β-ELBO, with Monte-Carlo noise fixed per sample,
  so that every retrained model is scored on identical draws.
* :func:`diffusion_sample_loss`: a conditional diffusion model's ε- or v-prediction MSE at
  fixed, evenly spaced timesteps and fixed noise, conditioned on the class the sample was
  generated for (D-TRAK fixes its diffusion noise likewise).

Which one a model kind uses is its :meth:`~gmval.models.kinds.ModelKind.sample_loss`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import torch

from gmval.images import ImageSet, to_float

if TYPE_CHECKING:  # diffusers is slow to import; the diffusion parts import it when used
    from gmval.models.diffusion import ConditionalDiffusion
    from gmval.models.vae import BetaVAE

#: Generated images scored per forward pass in :func:`vae_sample_loss`.
LOSS_BATCH = 64
#: Noisy copies (images × steps × draws) per forward pass in :func:`diffusion_sample_loss`.
DIFFUSION_LOSS_COPIES = 512


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


def drawn_classes(generated: ImageSet) -> np.ndarray:
    """The class each generated sample was drawn for (its labels), which the conditional loss needs.

    Raises:
        ValueError: for unlabelled samples.
    """
    if generated.labels is None:
        raise ValueError(f"{generated.name}: the conditional diffusion loss needs the class of every generated "
                         "sample (the labels it was generated for)")
    return generated.labels


def labels_digest(generated: ImageSet) -> str:
    """16 hex digits identifying the classes of :func:`drawn_classes` (an image set's fingerprint omits labels)."""
    return hashlib.sha256(drawn_classes(generated).astype(np.int64).tobytes()).hexdigest()[:16]
