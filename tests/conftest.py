"""Shared fixtures: small real images (sklearn digits) so engine tests run in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gmval.images import ImageSet


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits16() -> ImageSet:
    """The 1797 sklearn digits upsampled to 16x16 grey uint8, labelled, ids 1000..2796."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=16, mode="bilinear", align_corners=False)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageSet(images, np.arange(1000, 1000 + len(images)), d.target, name="digits16")


@pytest.fixture(scope="session")
def split(digits16: ImageSet) -> tuple[ImageSet, ImageSet]:
    """1500 training digits and the 297 remaining as 'generated' images."""
    return digits16.subset(range(1500), "train"), digits16.subset(range(1500, len(digits16)), "generated")
