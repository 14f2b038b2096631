"""Measured digit attributes (the offline C2 stand-in) on shapes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmval.data.morpho import attribute_thresholds, binary_attributes, morphometry, with_attributes
from gmval.images import ImageSet


def _bars() -> ImageSet:
    canvas = np.zeros((4, 1, 28, 28), np.uint8)
    canvas[0, 0, 4:24, 13:16] = 255                      # upright bar, 3 px wide
    canvas[1, 0, 4:24, 11:18] = 255                      # upright bar, 7 px wide
    for r in range(4, 24):                               # leaning right: top shifted right
        c = 8 + (24 - r) // 2
        canvas[2, 0, r, c:c + 3] = 255
    return ImageSet(torch.from_numpy(canvas), np.arange(4), name="bars")  # image 3 is blank


def test_morphometry_measures_known_shapes() -> None:
    m = morphometry(_bars())
    assert m.loc[0, "width"] == 3 and m.loc[0, "height"] == 20 and m.loc[0, "area"] == 60
    assert abs(m.loc[0, "slant"]) < 1e-9 and abs(m.loc[1, "slant"]) < 1e-9
    assert 2.0 <= m.loc[0, "thickness"] <= 4.0 and m.loc[1, "thickness"] > 2 * m.loc[0, "thickness"] - 1
    assert 0.3 < m.loc[2, "slant"] < 0.6                  # atan(1/2) = 0.46 rad
    flipped = ImageSet(_bars().images.flip(-1), np.arange(4))
    assert morphometry(flipped).loc[2, "slant"] == pytest.approx(-m.loc[2, "slant"])
    assert (m.loc[3] == 0).all()


def test_binary_attributes_split_at_reference_median(digits16: ImageSet) -> None:
    m = morphometry(digits16, threshold=100)
    cut = attribute_thresholds(m)
    attrs = binary_attributes(m, cut)
    assert list(attrs.columns) == ["thick", "slanted", "wide"] and attrs.dtypes.eq(bool).all()
    assert 0.3 < attrs.mean().min() and attrs.mean().max() < 0.7
    tagged = with_attributes(digits16, attrs)
    assert tagged.attributes is not None and tagged.attributes.equals(attrs)
    np.testing.assert_array_equal(tagged.labels, digits16.labels)


def test_morphometry_rejects_bad_input(digits16: ImageSet) -> None:
    rgb = ImageSet(digits16.images[:2].repeat(1, 3, 1, 1), np.arange(2))
    with pytest.raises(ValueError, match="grey"):
        morphometry(rgb)
    with pytest.raises(ValueError, match="threshold"):
        morphometry(digits16, threshold=0)
