"""Measured shape attributes of handwritten digits: the offline stand-in for CelebA's attributes (C2).

The identical-attributes test (paper Sec. 4.4) needs images whose binary attributes are
known for training *and* generated images. CelebA's are annotations; offline we measure
them, as Morpho-MNIST (Castro et al., JMLR 2019) does, from the pixels of any grey digit,
so a generated digit's attributes are exact measurements, not a classifier's guess:

* ``area``: ink pixels (grey >= ``threshold``);
* ``thickness``: twice the mean distance from the stroke's skeleton to the background;
* ``slant``: the shear angle (radians, > 0 when the top leans right) from the ink's second
  moments, the quantity classic deskewing removes;
* ``width`` / ``height``: the ink's bounding box.

:func:`binary_attributes` turns them into booleans by thresholds taken from a reference
set (the training set's medians), so each attribute splits the training set in halves.

::

    measures = morphometry(train)
    cut = attribute_thresholds(measures)
    train = with_attributes(train, binary_attributes(measures, cut))
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.morphology import skeletonize

from gmval.images import ImageSet

#: Binary attribute -> the measure it thresholds (True above the reference median).
ATTRIBUTES: dict[str, str] = {"thick": "thickness", "slanted": "slant", "wide": "width"}


def _measure(ink: np.ndarray) -> tuple[float, float, float, float, float]:
    area = float(ink.sum())
    if area == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    skeleton = skeletonize(ink)
    depth = ndimage.distance_transform_edt(ink)
    thickness = 2.0 * float(depth[skeleton].mean()) if skeleton.any() else 0.0
    ys, xs = np.nonzero(ink)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    mu02 = float((dy * dy).mean())
    # Rows grow downwards, so a top leaning right has x falling as y rises: mu11 < 0.
    slant = float(np.arctan2(-(dx * dy).mean(), mu02)) if mu02 > 0 else 0.0
    return area, thickness, slant, float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)


def morphometry(ds: ImageSet, threshold: int = 128) -> pd.DataFrame:
    """Shape measurements of every (grey, light-on-dark) image of ``ds``, one row each.

    Args:
        ds: grey digits, ink bright on a dark background (MNIST's convention).
        threshold: grey level (0..255) from which a pixel counts as ink.

    Returns:
        Columns ``area``, ``thickness``, ``slant``, ``width``, ``height``; blank images get zeros.

    Raises:
        ValueError: for RGB images or a threshold outside 1..255.
    """
    if ds.shape[0] != 1:
        raise ValueError(f"{ds.name}: morphometry measures grey digits, got {ds.shape[0]} channels")
    if not 1 <= threshold <= 255:
        raise ValueError(f"threshold must be in 1..255, got {threshold}")
    ink = ds.images[:, 0].numpy() >= threshold
    rows = [_measure(img) for img in ink]
    return pd.DataFrame(rows, columns=["area", "thickness", "slant", "width", "height"])


def attribute_thresholds(reference: pd.DataFrame, attributes: Mapping[str, str] = ATTRIBUTES) -> dict[str, float]:
    """The reference set's median of each attribute's measure."""
    return {name: float(reference[measure].median()) for name, measure in attributes.items()}


def binary_attributes(measures: pd.DataFrame, thresholds: Mapping[str, float],
                      attributes: Mapping[str, str] = ATTRIBUTES) -> pd.DataFrame:
    """Boolean attributes: measure above the attribute's threshold."""
    return pd.DataFrame({name: measures[attributes[name]].to_numpy() > thresholds[name] for name in thresholds})


def with_attributes(ds: ImageSet, attributes: pd.DataFrame) -> ImageSet:
    """``ds`` with ``attributes`` (one boolean row per image) attached."""
    return ImageSet(images=ds.images, ids=ds.ids, labels=ds.labels, attributes=attributes, name=ds.name,
                    classes=ds.classes)
