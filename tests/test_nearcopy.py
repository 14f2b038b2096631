"""Near-copy matching: the shift-tolerant distance, the thumbnail encoder, and the defaults built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gmval
from gmval.distances import create_distance
from gmval.encoders import create_encoder


def _framed(x: torch.Tensor) -> torch.Tensor:
    """Digits on a black margin, as MNIST's are, so that rolling them is a shift."""
    return torch.nn.functional.pad(x, (4, 4, 4, 4))


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def test_shift_l2_ignores_small_shifts_and_brightness_but_not_content(digits16) -> None:
    x = _framed(digits16.images[:50])
    d = create_distance("shift-l2", resolution=None, max_shift=2, scales=(1.0,), centre=False, device="cpu")
    moved = _shifted(x, 1, -2)  # digits have a black margin, so rolling is a shift
    brighter = (x.float() * 0.8 + 30).round().clamp(0, 255).to(torch.uint8)
    assert float(d(x, moved).max()) < 1e-3 and float(d(x, brighter).max()) < 0.02
    others = d(x, x.roll(1, dims=0))
    assert float(others.min()) > 0.1
    plain = create_distance("l2", device="cpu")
    assert float(plain(x, moved).min()) > float(d(x, moved).max())
    flat = torch.zeros(2, 1, 24, 24, dtype=torch.uint8)
    assert torch.isfinite(d(flat, x[:2])).all()
    with pytest.raises(ValueError, match="scales"):
        create_distance("shift-l2", scales=(0.9, 1.1))


def test_shift_l2_tolerates_a_rescale(digits16) -> None:
    import torch.nn.functional as F

    x = digits16.images[:50]
    big = F.interpolate(x.float(), scale_factor=1.1, mode="bilinear", align_corners=False, antialias=True)
    zoomed = big[..., 1:17, 1:17].round().clamp(0, 255).to(torch.uint8)  # 10 % larger, same size
    d = create_distance("shift-l2", resolution=None, device="cpu")
    without = create_distance("shift-l2", resolution=None, scales=(1.0,), device="cpu")
    assert float(d(x, zoomed).mean()) < 0.6 * float(without(x, zoomed).mean())


def test_thumbnail_recall_is_centred(digits16) -> None:
    x = _framed(digits16.images[:50])
    enc = create_encoder("thumbnail", device="cpu")
    a, b = enc.encode(x), enc.encode(_shifted(x, 2, 1))
    assert float((a * b).sum(1).min()) > 0.98  # unit vectors: cosine
    uncentred = create_encoder("thumbnail", centre=False, device="cpu")
    assert float((uncentred.encode(x) * uncentred.encode(_shifted(x, 2, 1))).sum(1).min()) < 0.9


def test_defaults_find_the_source_of_shifted_noisy_copies(split) -> None:
    train = gmval.ImageSet(_framed(split[0].images), split[0].ids)
    rng = np.random.default_rng(0)
    sources = np.sort(rng.choice(len(train), 40, replace=False))
    copies = torch.stack([_shifted(train.images[int(i)], int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
                          for i in sources])
    copies = (copies.float() + torch.from_numpy(rng.normal(0, 8, copies.shape)).float()).round().clamp(0, 255)
    res = gmval.value(train, copies.to(torch.uint8), k=5, cache_dir=None, progress=False)
    assert (res.topk_indices()[:, 0] == sources).mean() >= 0.95
