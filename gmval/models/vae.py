"""The paper's β-VAE (its Table 12, captioned "BigGAN" in the extracted text).

Architecture (Table 12): encoder conv 32, 32, 64, 64 (4x4, stride 2, ReLU), FC 256,
latent 32; decoder the reverse with transposed convolutions; ReLU throughout. The
paper follows VAE-TracIn (Kong & Chaudhuri 2021) for training, so the loss and
initialisation follow its code: per image, reconstruction summed over pixels plus
β · KL summed over latent dimensions; Kaiming-normal weights, zero biases.

Deviations, all deliberate:

* 28x28 inputs are padded with black to 32x32 (four stride-2 convolutions need a multiple
  of 16) and outputs cropped back; the paper's "28x28x1" input does not fit its stack.
* The encoder's FC 256 is followed by a linear head to (μ, log σ²) and the decoder
  starts with FC latent→256→conv features, the usual reading of "reverse of encoder".
* No BatchNorm anywhere (there is none in the paper's table either): per-sample
  gradients for VAE-TracIn must not couple the images of a batch.
* The likelihood is chosen per dataset: Bernoulli (binary cross-entropy on logits) as in
  VAE-TracIn's MNIST model, or Gaussian (squared error of the sigmoid mean, i.e. σ² = ½,
  constants dropped) as in its CIFAR model and the paper's "Gaussian" decoder.
* Training uses Adam in the CPU profiles; the ``paper`` profile uses VAE-TracIn's plain
  SGD (lr 1e-4, batch 64, 1.5M iterations, a snapshot every 50k).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gmval.images import ImageSet
from gmval.models.generator import check_labels, check_shape, crop_to, pad_to, padded_size, to_uint8
from gmval.models.training import Batch, TrainConfig, TrainResult, default_device, seeded_init, train

LIKELIHOODS = ("bernoulli", "gaussian")
OPTIMIZERS = ("adam", "sgd")


#: Bumped whenever a change to this module changes what a training run produces, so that the
#: zoo never reuses weights trained by an older recipe (part of the model's key).
RECIPE = 1

@dataclass(frozen=True)
class VAEConfig:
    """Shape and objective of a :class:`BetaVAE`.

    Attributes:
        channels: image channels (1 or 3).
        image_size: image side in pixels (square images).
        latent_dim: size of z (Table 12: 32).
        hidden: width of the fully connected layer (Table 12: 256).
        beta: weight of the KL term (VAE-TracIn: 4 for MNIST, 2 for CIFAR-10).
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (see the module docstring).
    """

    channels: int
    image_size: int
    latent_dim: int = 32
    hidden: int = 256
    beta: float = 4.0
    likelihood: str = "bernoulli"

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")


class BetaVAE(nn.Module):
    """β-VAE on images in [0, 1]; see the module docstring for the architecture.

    Args:
        config: sizes and objective.
    """

    conditional = False
    num_classes = 0

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.channels, padded_size(config.image_size, 16)
        self.canvas = s
        self.bottom = s // 16  # spatial side after four stride-2 convolutions
        flat = 64 * self.bottom * self.bottom
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 2 * config.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, flat), nn.ReLU(),
            nn.Unflatten(1, (64, self.bottom, self.bottom)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, 2, 1),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z | x) for images ``x`` in [0, 1], each (B, latent_dim)."""
        h = self.encoder(pad_to(x, self.canvas, 0.0))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the sigmoid, cropped to the image size: (B, C, H, W)."""
        return crop_to(self.decoder(z), self.config.image_size, self.config.image_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image of p(x | z), in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None,
             generator: torch.Generator | None = None, draws: int = 1) -> torch.Tensor:
        """Negative β-ELBO of each image: reconstruction (summed) + β · KL (summed), shape (B,).

        The expectation over q(z | x) is a Monte-Carlo mean over ``draws`` reparameterised
        samples. Pass ``eps`` to fix them (a pure function of the weights, as
        ``torch.func`` per-sample gradients need); otherwise they come from ``generator``.

        Args:
            x: images in [0, 1], (B, C, H, W).
            eps: standard-normal noise (B, draws, latent_dim), or None to draw it.
            generator: source of the noise when ``eps`` is None.
            draws: Monte-Carlo samples per image when ``eps`` is None.
        """
        mu, logvar = self.encode(x)
        b, d = mu.shape
        if eps is None:
            eps = torch.randn(b, draws, d, generator=generator, device=x.device, dtype=x.dtype)
        m = eps.shape[1]
        z = (mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps).reshape(b * m, d)
        logits = self.decode_logits(z).reshape(b, m, *x.shape[1:])
        target = x[:, None].expand_as(logits)
        if self.config.likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            recon = (torch.sigmoid(logits) - target).pow(2)
        recon = recon.flatten(2).sum(2).mean(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return recon + self.config.beta * kl

    @torch.no_grad()
    def generate(self, n: int, seed: int, labels: np.ndarray | None = None, batch_size: int = 256,
                 progress: bool = False) -> torch.Tensor:
        """Decode ``n`` draws of z ~ N(0, I) to their mean images (uint8, CPU).

        All latents are drawn up front from ``seed``, so the images do not depend on ``batch_size``.
        """
        check_labels(labels, n, self.conditional, self.num_classes)
        self.eval()
        device = next(self.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=gen, device=device)
        chunks = [to_uint8(self.decode(z[i:i + batch_size]))
                  for i in tqdm(range(0, n, batch_size), desc="vae sample", disable=not progress)]
        return torch.cat(chunks)


class VAETask:
    """β-VAE training: the batch mean of :meth:`BetaVAE.loss` with one draw per image.

    Args:
        model: the VAE.
        optimizer: ``"adam"`` or ``"sgd"`` (plain, no momentum, as VAE-TracIn).
        lr: learning rate.
    """

    def __init__(self, model: BetaVAE, optimizer: str, lr: float) -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.model = model
        # One fused kernel per update instead of a loop of small ops: a tenth of a small model's step on CPU.
        self.opt = (torch.optim.Adam(model.parameters(), lr=lr, fused=True) if optimizer == "adam"
                    else torch.optim.SGD(model.parameters(), lr=lr))

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"vae": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.opt}

    def step(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        loss = self.model.loss(batch.x, generator=generator).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}


def train_vae(data: ImageSet, folder: Path, config: VAEConfig, train_config: TrainConfig, optimizer: str = "adam",
              lr: float = 1e-3, params: dict[str, Any] | None = None, progress: bool = True,
              device: torch.device | None = None) -> tuple[BetaVAE, TrainResult]:
    """Train (or resume, or just load) a β-VAE on ``data`` in ``folder``.

    Args:
        data: training images; their shape must match ``config``.
        folder: the run's folder (checkpoint and snapshots).
        config: architecture and objective.
        train_config: epochs, batch size, seed, checkpoint and snapshot cadence.
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate.
        params: extra identifying parameters recorded with the run (e.g. its zoo name).
        progress: show a tqdm bar.
        device: where to train; default GPU when present.

    Returns:
        (the trained model in eval mode, the run).
    """
    check_shape(data, config.channels, config.image_size)
    model = seeded_init(train_config.seed, lambda: BetaVAE(config)).to(device or default_device())
    task = VAETask(model, optimizer, lr)
    run_params = {"model": "beta-vae", "config": asdict(config), "optimizer": optimizer, "lr": lr,
                  **(params or {})}
    result = train(task, data, train_config, folder, run_params, desc="beta-vae", progress=progress)
    return model, result
