"""What notebook 00 reports beside :func:`gmval.models.zoo.quality`: the quality gate's inputs.

:func:`zoo.quality <gmval.models.zoo.quality>` measures FD, its real-image floor, class
accuracy and the class histogram. The gate of :mod:`gmval.verdicts` also needs the share of
confidently labelled samples, and a reader needs a scale for FD: the FD of real images blurred
by a Gaussian of known width, measured with the same classifier, reference and sample size
as the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.functional import gaussian_blur

from gmval.data import subsample
from gmval.images import ImageSet
from gmval.models import zoo
from gmval.models.fid import frechet_distance
from gmval.profiles import Profile, profile_settings
from gmval.verdicts import GATE, gate_table, is_conditional

#: Widths (pixels) of the Gaussian blurs whose FD is reported beside each floor.
BLUR_SIGMAS = (0.5, 1.0, 2.0)


def confident_mask(logits: np.ndarray, threshold: float = GATE.confident_softmax) -> np.ndarray:
    """Which samples the classifier labels with max-softmax at least ``threshold``."""
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    return (torch.softmax(z, dim=1).max(dim=1).values >= threshold).numpy()


def confident_share(logits: np.ndarray, threshold: float = GATE.confident_softmax) -> float:
    """Share of samples whose classifier max-softmax is at least ``threshold``."""
    return float(confident_mask(logits, threshold).mean())


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 ``images`` blurred by a Gaussian of ``sigma`` pixels (kernel out to 3 sigma), rounded back to uint8."""
    radius = max(1, int(np.ceil(3 * sigma)))
    out = gaussian_blur(images.float(), kernel_size=2 * radius + 1, sigma=sigma)
    return out.round().clamp(0, 255).to(torch.uint8)


def blur_column(sigma: float) -> str:
    return f"fd_blur_{sigma:g}"


def measures(name: str, profile: Profile = "default", sigmas: Sequence[float] = BLUR_SIGMAS,
             reference: np.ndarray | None = None) -> dict[str, Any]:
    """Confident share of ``name``'s quality samples and FD of blurred real images (same floor setting).

    ``reference``: the classifier features of :func:`zoo.reference_images`, which depend on the
    dataset only (computed here when not given).
    """
    m = profile_settings(profile)["models"]
    dataset = zoo.dataset_of(name, profile)
    classifier = zoo.get_classifier(dataset, profile, progress=False)[0]
    fake = zoo.sample(name, m["quality_samples"], zoo.QUALITY_SEED, profile, progress=False)
    train = zoo.training_data(name, profile).train
    # the floor's real images: as many training images as samples, drawn as zoo.quality draws them
    real_train = train if len(fake) >= len(train) else subsample(train, len(fake), seed=m["seed"])
    if reference is None:
        reference = classifier.embed(zoo.reference_images(name, profile))
    out: dict[str, Any] = {"generator": name, "confident_share": confident_share(classifier.logits(fake))}
    for sigma in sigmas:
        blurred = ImageSet(images=blur(real_train.images, sigma), ids=real_train.ids, labels=real_train.labels,
                           name=f"{real_train.name}-blur{sigma:g}", classes=real_train.classes)
        out[blur_column(sigma)] = frechet_distance(classifier.embed(blurred), reference)
    return out


def quality_table(reports: pd.DataFrame, profile: Profile = "default") -> pd.DataFrame:
    """``reports`` (one :func:`zoo.quality` dict per row) with the measures and the gate's columns.

    Adds ``confident_share``, one ``fd_blur_<sigma>`` per :data:`BLUR_SIGMAS`, ``fd_ratio``,
    ``class_count_ratio``, ``gate`` and ``gate_reasons`` (:func:`gmval.verdicts.gate_table`).
    """
    references: dict[str, np.ndarray] = {}
    rows = []
    for name in reports["generator"]:
        dataset = zoo.dataset_of(name, profile)
        if dataset not in references:
            classifier = zoo.get_classifier(dataset, profile, progress=False)[0]
            references[dataset] = classifier.embed(zoo.reference_images(name, profile))
        rows.append(measures(name, profile, reference=references[dataset]))
    extra = pd.DataFrame(rows)
    table = gate_table(reports.merge(extra, on="generator", how="left"))
    first = ["generator", "dataset", "samples", "fd", "fd_real", "fd_ratio", *map(blur_column, BLUR_SIGMAS),
             "class_accuracy", "confident_share", "class_count_ratio", "gate", "gate_reasons"]
    first = [c for c in first if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def confident_samples(name: str, generated: ImageSet, profile: Profile = "default") -> np.ndarray | None:
    """Which of ``name``'s samples its dataset's classifier labels confidently; None for a conditional generator.

    An unconditional sample's class is the classifier's label (:func:`zoo.sample`), so C1 is
    also reported on the samples whose label is confident (max-softmax >= the gate's threshold).
    """
    if is_conditional(name):
        return None
    classifier = zoo.get_classifier(zoo.dataset_of(name, profile), profile, progress=False)[0]
    return confident_mask(classifier.logits(generated))
