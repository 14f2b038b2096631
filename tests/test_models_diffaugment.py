"""DiffAugment (gmval.models.diffaugment): shapes, values, gradients, seeding, zero strength."""

from __future__ import annotations

import pytest
import torch

from gmval.models.diffaugment import cutout, diff_augment, translate


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 8, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=_gen(99)) * 2 - 1


def test_translation_shifts_whole_images_within_the_ratio_and_fills_with_background() -> None:
    x = torch.full((32, 1, 16, 16), -1.0)
    x[:, :, 8, 8] = 1.0  # one bright pixel per image
    y = translate(x, 0.125, _gen())
    assert y.shape == x.shape
    moved = torch.nonzero(y[:, 0] == 1.0)
    assert len(moved) == 32 and torch.equal(moved[:, 0], torch.arange(32))  # one pixel per image, kept
    shifts = moved[:, 1:] - 8
    assert shifts.abs().max() <= 2 and len({tuple(s) for s in shifts.tolist()}) > 1  # 16 / 8 = 2 px at most
    assert set(y.unique().tolist()) == {-1.0, 1.0}
    # A shift moves every pixel by the same offset.
    z = _images(32)
    dy, dx = shifts[0].tolist()
    shifted = translate(z, 0.125, _gen())[0, 0]
    assert torch.equal(shifted[max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)],
                       z[0, 0, max(-dy, 0):16 + min(-dy, 0), max(-dx, 0):16 + min(-dx, 0)])


def test_cutout_erases_one_clipped_square_per_image() -> None:
    x = torch.full((32, 1, 16, 16), 1.0)
    y = cutout(x, 0.5, _gen())
    for image in y[:, 0]:
        rows, cols = torch.nonzero(image == 0.0, as_tuple=True)
        assert len(rows) > 0 and set(image.unique().tolist()) <= {0.0, 1.0}
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(rows) == height * width and height <= 8 and width <= 8  # a rectangle: the square, clipped
    assert (y == 0).float().mean() > 0.1


def test_diff_augment_is_seeded_differentiable_and_identity_at_zero_strength() -> None:
    x = _images().requires_grad_(True)
    a = diff_augment(x, "translation,cutout", _gen(1))
    assert a.shape == x.shape
    assert torch.equal(a, diff_augment(x, "translation,cutout", _gen(1)))
    assert not torch.equal(a, diff_augment(x, "translation,cutout", _gen(2)))
    a.sum().backward()
    assert x.grad is not None
    # Each kept pixel passes its gradient once; erased or shifted-out pixels get none.
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and 0 < x.grad.sum() < x.numel()
    assert torch.equal(diff_augment(x, "", _gen(1)), x)
    assert torch.equal(diff_augment(x, "translation,cutout", _gen(1), translation=0.0, cutout_ratio=0.0), x)


def test_diff_augment_rejects_unknown_transforms() -> None:
    with pytest.raises(ValueError, match="unknown DiffAugment transform 'color'"):
        diff_augment(_images(), "translation,color", _gen())
