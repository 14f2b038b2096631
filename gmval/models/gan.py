"""The paper's GAN for MNIST (its Table 11), a DCGAN-style pair, and its training step.

Table 11 as extracted lists: generator FC(100, 8192), BN, ReLU, then Conv(128, 64, 4, 2, 1),
BN(64), ReLU, ...; discriminator Conv(1, 128, 4, 2, 1), BN(128), LeakyReLU, then
FC(8192, 1024), BN(1024), LeakyReLU, ... The rows after these are cut off. We complete
them as the classic DCGAN-for-MNIST pair that these layer shapes come from, on a 32x32
canvas (8192 = 128 x 8 x 8 is two stride-2 steps below 32):

* G: z (100) → FC 8192, BN, ReLU → reshape 128x8x8 → ConvT(128, 64, 4, 2, 1), BN, ReLU →
  ConvT(64, C, 4, 2, 1), tanh → 32x32, centre-cropped to the image size.
* D: image padded to 32x32 → Conv(C, 64, 4, 2, 1), LeakyReLU(0.2) → Conv(64, 128, 4, 2, 1),
  BN(128), LeakyReLU → flatten 8192 → FC(8192, 1024), BN(1024), LeakyReLU → FC(1024, 1) logit.

Deviations: the table's first discriminator row is Conv(1, 128, ...), which cannot reach a
128 x 8 x 8 = 8192 feature map from 28 or 32 pixels in one step; we use 64 then 128 channels
(the second row then matches the table's BN(128)). The table's "BN(32)" after the first
generator layer is read as a BatchNorm over the FC output. Losses are the non-saturating
GAN losses; optimizer Adam(2e-4, β = (0.5, 0.999)) and N(0, 0.02) init follow DCGAN,
since the paper gives no training details. Images live in [-1, 1] inside the GAN.

Samples come from an exponential moving average of G's weights (and BatchNorm statistics),
as in Karras et al.'s progressive GAN and BigGAN, the paper's own CIFAR-10 generator: the live
G of an alternating GAN oscillates around a good solution, and its average sits closer to it.
The live pair stays in the checkpoint for IF4GAN, which traces the training dynamics.

:class:`GANTask` keeps each piece (latents, the two losses, the update) a separate method
so that a tracing variant (IF4GAN's recorded, simultaneous SGD) can override the update
alone.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gmval.images import ImageSet
from gmval.models.diffaugment import diff_augment
from gmval.models.generator import check_labels, check_shape, crop_to, pad_to, padded_size, to_uint8
from gmval.models.training import Batch, TrainConfig, TrainResult, default_device, seeded_init, train, update_ema


@dataclass(frozen=True)
class GANConfig:
    """Sizes of a :class:`DCGANGenerator` / :class:`DCGANDiscriminator` pair.

    Attributes:
        channels: image channels (1 or 3).
        image_size: image side in pixels; the networks work on it padded to a multiple of 16.
        z_dim: latent size (Table 11: 100).
        hidden: discriminator FC width (Table 11: 1024).
    """

    channels: int
    image_size: int
    z_dim: int = 100
    hidden: int = 1024

    @property
    def canvas(self) -> int:
        """Side of the padded canvas (32 for MNIST and CIFAR-10)."""
        return padded_size(self.image_size, 16)


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """Table 11's generator: z → image in [-1, 1] (see the module docstring).

    Args:
        config: sizes.
    """

    conditional = False
    num_classes = 0

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        s = config.canvas // 4
        self.net = nn.Sequential(
            nn.Linear(config.z_dim, 128 * s * s), nn.BatchNorm1d(128 * s * s), nn.ReLU(),
            nn.Unflatten(1, (128, s, s)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, config.channels, 4, 2, 1), nn.Tanh(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (B, C, H, W) at the configured size."""
        return crop_to(self.net(z), self.config.image_size, self.config.image_size)

    @torch.no_grad()
    def generate(self, n: int, seed: int, labels: np.ndarray | None = None, batch_size: int = 256,
                 progress: bool = False) -> torch.Tensor:
        """``n`` images from z ~ N(0, I) drawn up front from ``seed`` (uint8, CPU).

        BatchNorm uses its running statistics (eval mode), so an image does not depend on
        the others in its batch.
        """
        check_labels(labels, n, self.conditional, self.num_classes)
        self.eval()
        device = next(self.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        z = torch.randn(n, self.config.z_dim, generator=gen, device=device)
        chunks = [to_uint8(self(z[i:i + batch_size]) * 0.5 + 0.5)
                  for i in tqdm(range(0, n, batch_size), desc="gan sample", disable=not progress)]
        return torch.cat(chunks)


class DCGANDiscriminator(nn.Module):
    """Table 11's discriminator: image in [-1, 1] → real/fake logit (B,).

    Args:
        config: sizes.
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.canvas = config.canvas
        s = config.canvas // 4
        self.net = nn.Sequential(
            nn.Conv2d(config.channels, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(128 * s * s, config.hidden), nn.BatchNorm1d(config.hidden), nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, 1),
        )
        _dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Padding with -1 is black in [-1, 1], the same background the generator's crop removes.
        return self.net(pad_to(x, self.canvas, -1.0)).squeeze(1)


#: Bumped whenever a change to this module changes what a training run produces, so that the
#: zoo never reuses weights trained by an older recipe (the number is part of the model's key).
RECIPE = 2


class GANTask:
    """Alternating DCGAN training: one discriminator then one generator update per batch.

    Args:
        generator: G.
        discriminator: D.
        lr: Adam learning rate of both.
        betas: Adam betas of both.
        ema_decay: decay of the weight average of G that samples (0: no average, the live G samples).
        augment: DiffAugment policy every image D sees goes through, real and generated, in both
            updates (:func:`~gmval.models.diffaugment.diff_augment`; ``""``: none).
    """

    def __init__(self, generator: DCGANGenerator, discriminator: DCGANDiscriminator, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), ema_decay: float = 0.0, augment: str = "") -> None:
        self.g, self.d = generator, discriminator
        self.ema_decay = ema_decay
        self.augment = augment
        self.g_ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay > 0 else None
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas, fused=True)

    def modules(self) -> dict[str, nn.Module]:
        live = {"generator": self.g, "discriminator": self.d}
        return live if self.g_ema is None else {**live, "generator_ema": self.g_ema}

    @property
    def sampler(self) -> DCGANGenerator:
        """The generator that draws samples: the weight average when there is one."""
        return self.g if self.g_ema is None else self.g_ema

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The step's z ~ N(0, I), (n, z_dim), from the step's generator."""
        device = next(self.g.parameters()).device
        return torch.randn(n, self.g.config.z_dim, generator=generator, device=device)

    def seen(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images as D sees them: through the ``augment`` policy, each call with fresh draws from ``generator``."""
        return diff_augment(x, self.augment, generator)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean softplus(-D(real)) + mean softplus(D(fake)), images in [-1, 1]."""
        return F.softplus(-self.d(real)).mean() + F.softplus(self.d(fake)).mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Non-saturating generator loss: mean softplus(-D(fake))."""
        return F.softplus(-self.d(fake)).mean()

    def step(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        real = batch.x * 2.0 - 1.0
        fake = self.g(self.latents(len(real), generator))
        # Augmentations are drawn after the latents, so a run without them draws the same latents as before.
        loss_d = self.discriminator_loss(self.seen(real, generator), self.seen(fake.detach(), generator))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # D's weight gradients are not needed for G's update; skipping them saves a third of D's backward.
        self.d.requires_grad_(False)
        loss_g = self.generator_loss(self.seen(fake, generator))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.d.requires_grad_(True)
        self.opt_g.step()
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.ema_decay, batch.step)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


def train_gan(data: ImageSet, folder: Path, config: GANConfig, train_config: TrainConfig, lr: float = 2e-4,
              ema_decay: float = 0.0, augment: str = "", params: dict[str, Any] | None = None, progress: bool = True,
              device: torch.device | None = None) -> tuple[DCGANGenerator, TrainResult]:
    """Train (or resume, or just load) the GAN on ``data`` in ``folder``.

    Args:
        data: training images; their shape must match ``config``.
        folder: the run's folder.
        config: sizes.
        train_config: epochs, batch size, seed, checkpoint cadence.
        lr: Adam learning rate of G and D.
        ema_decay: decay of G's weight average that samples (0: the live G samples).
        augment: DiffAugment policy of D's inputs (``""``: none).
        params: extra identifying parameters recorded with the run.
        progress: show a tqdm bar.
        device: where to train; default GPU when present.

    Returns:
        (the generator that samples, in eval mode: G's weight average when ``ema_decay > 0``, the run).
    """
    check_shape(data, config.channels, config.image_size)
    device = device or default_device()
    g = seeded_init(train_config.seed, lambda: DCGANGenerator(config)).to(device)
    d = seeded_init(train_config.seed + 1, lambda: DCGANDiscriminator(config)).to(device)
    task = GANTask(g, d, lr=lr, ema_decay=ema_decay, augment=augment)
    run_params = {"model": "dcgan", "config": asdict(config), "lr": lr, **(params or {})}
    if ema_decay > 0:
        run_params["ema_decay"] = ema_decay
    # Recorded only when used, so that the runs without augmentation keep their parameters.
    if augment:
        run_params["augment"] = augment
    result = train(task, data, train_config, folder, run_params, desc="dcgan", progress=progress)
    return task.sampler.eval(), result
