"""What every trained generator offers, and the image plumbing the models share.

The paper's convolutional stacks halve the resolution four times (VAE) or twice from a
fixed 8x8 start (GAN), which fits 32x32 inputs. MNIST's 28x28 digits are therefore padded
with background to 32x32 on the way in and centre-cropped back on the way out, so every
model reads and writes images on the dataset's own pixel grid.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from gmval.images import ImageSet


class Generator(Protocol):
    """A trained generative model that draws images from a seed.

    Attributes:
        conditional: whether ``generate`` takes class labels.
        num_classes: classes a conditional model knows (0 for an unconditional one).
    """

    conditional: bool
    num_classes: int

    def generate(self, n: int, seed: int, labels: np.ndarray | None = None, batch_size: int = 256,
                 progress: bool = False) -> torch.Tensor:
        """``n`` images as uint8 (n, C, H, W) on the CPU, the same for the same seed.

        Args:
            n: how many images.
            seed: seeds all the noise; images do not depend on ``batch_size``'s randomness.
            labels: (n,) classes to condition on; required by conditional models, refused by others.
            batch_size: images per forward pass.
            progress: show a tqdm bar.
        """
        ...


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8 on the CPU (rounded, clipped)."""
    return x.detach().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()


def padded_size(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``size``."""
    return -(-size // multiple) * multiple


def pad_to(x: torch.Tensor, size: int, value: float) -> torch.Tensor:
    """Centre ``x`` (B, C, H, W) on a ``size`` x ``size`` canvas filled with ``value``."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), value=value)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre ``height`` x ``width`` of ``x`` (undoes :func:`pad_to`)."""
    h, w = x.shape[-2:]
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top:top + height, left:left + width]


def check_labels(labels: np.ndarray | None, n: int, conditional: bool, num_classes: int) -> np.ndarray | None:
    """Validate the ``labels`` argument of :meth:`Generator.generate`."""
    if not conditional:
        if labels is not None:
            raise ValueError("this generator is unconditional; it takes no labels")
        return None
    if labels is None:
        raise ValueError("this generator is class-conditional; pass labels (one class per image)")
    out = np.asarray(labels, dtype=np.int64)
    if out.shape != (n,):
        raise ValueError(f"expected {n} labels, got shape {out.shape}")
    if out.min() < 0 or out.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    return out


def check_shape(data: ImageSet, channels: int, size: int) -> None:
    """Refuse a training set whose images are not (channels, size, size)."""
    if data.shape != (channels, size, size):
        raise ValueError(f"{data.name}: images are {data.shape}, the model expects {(channels, size, size)}")
