"""Differentiable augmentation of a GAN discriminator's inputs (DiffAugment, Zhao et al., NeurIPS 2020).

A discriminator trained on a small set (the motivation GAN's one half of one class) learns to
tell its few real images apart from everything else, its loss goes to zero and the
generator's gradients carry no shape. DiffAugment shows D every image, real and generated,
through random translations and cutouts, in D's update and in G's, so D cannot memorise
pixel positions, while G is still pushed towards the un-augmented images (the transforms
are differentiable, so G's gradient flows through them).

Written here rather than imported: the authors' reference code is not a PyPI package, and
the augmentation libraries on PyPI (kornia, torchvision) draw their randomness from the
global RNG, not from the training step's ``torch.Generator`` that keeps a zoo run exactly
resumable (:mod:`gmval.models.training`). The two transforms follow the reference's
``rand_translation`` and ``rand_cutout``; translation brings in the background value,
cutout erases to the value range's midpoint, as the reference does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The reference's strengths: shifts of up to 1/8 of the side, a square of half the side erased.
TRANSLATION = 0.125
CUTOUT = 0.5
POLICIES = ("translation", "cutout")


def translate(x: torch.Tensor, ratio: float, generator: torch.Generator, background: float = -1.0) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side each way, filling with ``background``."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    device = x.device
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=generator, device=device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=generator, device=device)
    rows = torch.arange(h, device=device).view(1, h, 1) + dy + sh
    cols = torch.arange(w, device=device).view(1, 1, w) + dx + sw
    padded = F.pad(x, (sw, sw, sh, sh), value=background)
    index = torch.arange(b, device=device).view(b, 1, 1)
    # Advanced indexing of (B, H, W, C) gathers each image's shifted window; it is differentiable in x.
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float, generator: torch.Generator, fill: float = 0.0) -> torch.Tensor:
    """Set a square of ``ratio`` of the side, centred anywhere in each image (clipped at its edge), to ``fill``."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    device = x.device
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=generator, device=device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=generator, device=device)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, fill), x)


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator, translation: float = TRANSLATION,
                 cutout_ratio: float = CUTOUT) -> torch.Tensor:
    """``x`` (B, C, H, W) in [-1, 1] through the comma-separated transforms of ``policy``, in that order.

    Args:
        x: images; gradients flow back to them.
        policy: e.g. ``"translation,cutout"``; ``""`` returns ``x`` unchanged.
        generator: where every random draw comes from.
        translation / cutout_ratio: strengths (0: that transform is the identity).

    Raises:
        ValueError: for a transform not in :data:`POLICIES`.
    """
    for name in filter(None, policy.split(",")):
        if name == "translation":
            x = translate(x, translation, generator)
        elif name == "cutout":
            x = cutout(x, cutout_ratio, generator)
        else:
            raise ValueError(f"unknown DiffAugment transform {name!r}; known: {', '.join(POLICIES)}")
    return x
