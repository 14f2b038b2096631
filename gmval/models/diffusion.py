"""A class-conditional diffusion model with classifier-free guidance, built on diffusers.

The paper uses a DDPM on MNIST and a classifier-free-guidance diffusion model (Ho &
Salimans 2022) on CIFAR-10 without giving their architectures. Ours is one model for both:
a diffusers ``UNet2DModel`` whose class embedding has one extra "null" class, trained with
the denoising loss of DDPM (1000 steps) while the label is dropped to the null class with
probability ``p_uncond`` (0.1, as Ho & Salimans). Sampling uses DDIM (η = 0, "trailing"
timestep spacing, which suits few steps) with guided predictions

    ε = ε(x, ∅) + s · (ε(x, y) - ε(x, ∅)),

so ``guidance_scale`` s = 1 is plain conditional sampling and s = 1 + w is Ho & Salimans'
weight w. Weights are averaged (EMA) during training and the average is what samples.

Noise schedule, prediction target and UNet width are profile settings. The ``paper``
profile uses DDPM's linear schedule with ε-prediction; the CPU profiles use the cosine
schedule with v-prediction (Salimans & Ho 2022), because with a few hundred CPU steps an
ε-predicting model still leaves visible noise (measured on MNIST after 450 steps of a
(16, 32, 32) UNet: 10% of samples classified as their class with linear/ε, 84% with cosine/v).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn
from tqdm.auto import tqdm

from gmval.images import ImageSet
from gmval.models.generator import check_labels, check_shape, crop_to, pad_to, padded_size, to_uint8
from gmval.models.training import Batch, TrainConfig, TrainResult, default_device, seeded_init, train, update_ema
from gmval.precision import forward_precision, resolve_precision

PREDICTION_TYPES = ("epsilon", "v_prediction")
#: Bumped whenever a change to this module changes what a trained model draws (training or
#: sampling), so that the zoo never reuses weights or samples of an older recipe (part of the key).
RECIPE = 2


def evenly_spaced_timesteps(count: int, total: int) -> torch.Tensor:
    """``count`` diffusion steps at the midpoints of ``count`` equal bins of 0..total-1 (int64).

    Midpoints, so that neither the trivial step 0 nor the pure-noise last step is
    over-represented (10 of 1000: 50, 150, ..., 950).

    Raises:
        ValueError: for a count outside 1..total.
    """
    if not 1 <= count <= total:
        raise ValueError(f"the number of timesteps must be in 1..{total}, got {count}")
    return ((torch.arange(count, dtype=torch.float64) + 0.5) * total / count).floor().long()


@dataclass(frozen=True)
class DiffusionConfig:
    """Architecture and noise schedule of a :class:`ConditionalDiffusion`.

    Attributes:
        channels: image channels (1 or 3).
        image_size: image side in pixels; the UNet works on it padded to a multiple of
            2^(levels - 1) (28 stays 28 with three levels).
        num_classes: conditioning classes (the null class is added on top).
        block_out_channels: UNet width per resolution level.
        attention: per level, whether its blocks have self-attention.
        layers_per_block: ResNet blocks per level.
        norm_groups: GroupNorm groups (must divide every width).
        train_timesteps: diffusion steps of the forward process.
        beta_schedule: diffusers β schedule name.
        prediction_type: what the UNet predicts: ``"epsilon"`` (DDPM's noise) or
            ``"v_prediction"`` (Salimans & Ho's v = √ᾱ ε - √(1-ᾱ) x₀).
        p_uncond: probability of training a batch element without its label.
    """

    channels: int
    image_size: int
    num_classes: int
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    attention: tuple[bool, ...] = (False, False, True)
    layers_per_block: int = 1
    norm_groups: int = 8
    train_timesteps: int = 1000
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"
    p_uncond: float = 0.1

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if len(self.attention) != len(self.block_out_channels):
            raise ValueError("attention needs one flag per entry of block_out_channels")
        # Profiles are JSON-like data, so accept lists and keep the frozen config hashable.
        object.__setattr__(self, "block_out_channels", tuple(self.block_out_channels))
        object.__setattr__(self, "attention", tuple(self.attention))

    @property
    def canvas(self) -> int:
        """Side the UNet sees: the image side padded to a multiple of its downsampling factor."""
        return padded_size(self.image_size, 2 ** (len(self.block_out_channels) - 1))


class ConditionalDiffusion(nn.Module):
    """UNet ε-predictor with a class embedding; images in [-1, 1] inside, [0, 1] outside.

    Args:
        config: architecture and schedule.
        sampling_steps: DDIM steps used by :meth:`generate`.
        guidance_scale: s of the guided noise (module docstring).
    """

    conditional = True

    def __init__(self, config: DiffusionConfig, sampling_steps: int = 50, guidance_scale: float = 2.0) -> None:
        super().__init__()
        self.config = config
        self.num_classes = config.num_classes
        self.null_class = config.num_classes
        self.sampling_steps = sampling_steps
        self.guidance_scale = guidance_scale
        down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in config.attention)
        up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention))
        self.unet = UNet2DModel(
            sample_size=config.canvas, in_channels=config.channels, out_channels=config.channels,
            block_out_channels=config.block_out_channels, layers_per_block=config.layers_per_block,
            down_block_types=down, up_block_types=up, norm_num_groups=config.norm_groups,
            num_class_embeds=config.num_classes + 1,
        )
        self.scheduler = DDPMScheduler(num_train_timesteps=config.train_timesteps,
                                       beta_schedule=config.beta_schedule, prediction_type=config.prediction_type)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Predicted noise for noisy canvases ``x`` (B, C, S, S) at steps ``t`` with classes ``y``."""
        return self.unet(x, t, class_labels=y).sample

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-image prediction MSE (ε or v) at a random step, labels dropped with ``p_uncond``; (B,).

        Args:
            x: images in [0, 1], (B, C, H, W).
            y: their classes (B,).
            generator: source of the steps, the noise and the label dropout.
        """
        b, c, s = x.shape[0], self.config.channels, self.config.canvas
        t = torch.randint(0, self.config.train_timesteps, (b,), generator=generator, device=x.device)
        noise = torch.randn((b, c, s, s), generator=generator, device=x.device, dtype=x.dtype)
        drop = torch.rand(b, generator=generator, device=x.device) < self.config.p_uncond
        y = torch.where(drop, torch.full_like(y, self.null_class), y)
        return self.prediction_loss(x, t, noise, y)

    def prediction_loss(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image prediction MSE (ε or v) of ``x`` noised with given ``noise`` at given steps; (B,).

        Args:
            x: images in [0, 1], (B, C, H, W).
            t: diffusion steps (B,).
            noise: standard-normal noise on the canvas, (B, C, canvas, canvas).
            y: classes (B,); the null class for an unconditional prediction.
        """
        x0 = pad_to(x * 2.0 - 1.0, self.config.canvas, -1.0)
        pred = self(self.scheduler.add_noise(x0, noise, t), t, y)
        target = noise if self.config.prediction_type == "epsilon" else self.scheduler.get_velocity(x0, noise, t)
        return F.mse_loss(pred, target, reduction="none").flatten(1).mean(1)

    def fixed_loss(self, x: torch.Tensor, y: torch.Tensor, timesteps: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:
        """The training objective of each image averaged over given steps and noise draws, conditional on ``y``.

        No label dropout: this is the model's loss for the class it is asked for. A pure
        function of the weights, as ``torch.func`` per-sample gradients need.

        Args:
            x: images in [0, 1], (B, C, H, W).
            y: their classes (B,).
            timesteps: the T diffusion steps (T,) every image is scored at.
            noise: (B, T, D, C, canvas, canvas): D draws per image and step.

        Returns:
            (B,) mean prediction MSE over the T × D (step, draw) pairs.
        """
        b, steps, draws = noise.shape[:3]
        if steps != len(timesteps):
            raise ValueError(f"noise holds draws for {steps} steps, but {len(timesteps)} timesteps were given")
        copies = steps * draws
        t = timesteps.to(x.device).repeat_interleave(draws).repeat(b)
        per = self.prediction_loss(x.repeat_interleave(copies, 0), t, noise.flatten(0, 2),
                                   y.repeat_interleave(copies, 0))
        return per.reshape(b, copies).mean(1)

    @torch.no_grad()
    def generate(self, n: int, seed: int, labels: np.ndarray | None = None, batch_size: int = 256,
                 progress: bool = False, precision: str = "fp32") -> torch.Tensor:
        """``n`` images of the given classes by guided DDIM (uint8, CPU).

        The starting noise of all images is drawn up front from ``seed`` and DDIM with
        η = 0 adds none, so images do not depend on ``batch_size``.

        Args:
            precision: the UNet's forward precision (:func:`gmval.precision.resolve_precision`);
                guidance and the DDIM update stay in float32. bf16 draws 100 MNIST digits of the
                zoo's (16, 32, 32) UNet 1.4x faster on one Sapphire Rapids thread, with pixels
                0.5 of 255 apart from fp32's on average.
        """
        classes = check_labels(labels, n, self.conditional, self.num_classes)
        assert classes is not None
        self.eval()
        device = next(self.parameters()).device
        resolved = resolve_precision(precision, device)
        gen = torch.Generator(device=device).manual_seed(seed)
        c, s = self.config.channels, self.config.canvas
        noise = torch.randn(n, c, s, s, generator=gen, device=device)
        y_all = torch.from_numpy(classes).to(device)
        # No clipping of the predicted x0 to [-1, 1] (DDIM's default): with guidance the clipped
        # x0 disagrees with the model's v-prediction, and the sampler then drifts off the digits
        # (thin classes such as MNIST's "1" come out as other shapes, backgrounds grainy).
        sched = DDIMScheduler.from_config(self.scheduler.config, timestep_spacing="trailing", clip_sample=False)
        sched.set_timesteps(self.sampling_steps)
        chunks = []
        bar = tqdm(total=n * self.sampling_steps, desc="diffusion sample", disable=not progress, unit="img-step")
        for i in range(0, n, batch_size):
            x = noise[i:i + batch_size]
            y = y_all[i:i + batch_size]
            null = torch.full_like(y, self.null_class)
            for t in sched.timesteps:
                with forward_precision(resolved, device):
                    out = self(torch.cat([x, x]), t.expand(2 * len(x)).to(device), torch.cat([y, null]))
                eps_c, eps_u = out.float().chunk(2)
                eps = eps_u + self.guidance_scale * (eps_c - eps_u)
                x = sched.step(eps, t, x).prev_sample
                bar.update(len(x))
            image = crop_to(x, self.config.image_size, self.config.image_size)
            chunks.append(to_uint8(image * 0.5 + 0.5))
        bar.close()
        return torch.cat(chunks)


class DiffusionTask:
    """Diffusion training: Adam on the batch-mean loss, then an EMA update of the weights.

    Args:
        model: the model being trained.
        lr: Adam learning rate.
        ema_decay: the EMA's decay (warmed up, :func:`~gmval.models.training.ema_decay_at`).
    """

    def __init__(self, model: ConditionalDiffusion, lr: float, ema_decay: float) -> None:
        self.model = model
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.ema_decay = ema_decay
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.opt}

    def step(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        if batch.y is None:
            raise ValueError("the conditional diffusion model needs a labelled training set")
        loss = self.model.loss(batch.x, batch.y, generator).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        update_ema(self.ema, self.model, self.ema_decay, batch.step)
        return {"loss": loss.item()}


def train_diffusion(data: ImageSet, folder: Path, config: DiffusionConfig, train_config: TrainConfig,
                    lr: float = 2e-4, ema_decay: float = 0.999, sampling_steps: int = 50,
                    guidance_scale: float = 2.0, params: dict[str, Any] | None = None, progress: bool = True,
                    device: torch.device | None = None) -> tuple[ConditionalDiffusion, TrainResult]:
    """Train (or resume, or just load) the diffusion model on labelled ``data`` in ``folder``.

    Args:
        data: labelled training images; their shape must match ``config``.
        folder: the run's folder.
        config: architecture and schedule.
        train_config: epochs, batch size, seed, checkpoint cadence.
        lr: Adam learning rate.
        ema_decay: decay of the weight average that samples.
        sampling_steps: DDIM steps of the returned model's :meth:`~ConditionalDiffusion.generate`.
        guidance_scale: its guidance scale.
        params: extra identifying parameters recorded with the run.
        progress: show a tqdm bar.
        device: where to train; default GPU when present.

    Returns:
        (the EMA model in eval mode, the run).
    """
    check_shape(data, config.channels, config.image_size)
    if data.labels is None:
        raise ValueError(f"{data.name}: the conditional diffusion model needs labels")
    model = seeded_init(train_config.seed, lambda: ConditionalDiffusion(config)).to(device or default_device())
    task = DiffusionTask(model, lr=lr, ema_decay=ema_decay)
    run_params = {"model": "cfg-diffusion", "config": asdict(config), "lr": lr, "ema_decay": ema_decay,
                  **(params or {})}
    result = train(task, data, train_config, folder, run_params, desc="diffusion", progress=progress)
    task.ema.sampling_steps, task.ema.guidance_scale = sampling_steps, guidance_scale
    return task.ema, result
