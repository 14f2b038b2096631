"""Dataset surgery the paper's experiments need: noisy images, class halves, dedupe, subsets.

Every function is deterministic given ``seed`` and returns new :class:`ImageSet` objects;
ids always travel with their images, so results can be joined back to the source.
"""

from __future__ import annotations

import numpy as np
import torch

from gmval.images import ImageSet, concat

NOISE_MODES = ("append", "replace")


def _noisy_ids(ids: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Fresh ids for noisy copies: past the maximum for integer ids, ``<id>+noise`` otherwise."""
    if np.issubdtype(ids.dtype, np.integer):
        return ids.max() + 1 + np.arange(len(chosen), dtype=ids.dtype)
    new = np.array([f"{i}+noise" for i in ids[chosen]])
    clash = np.intersect1d(new, ids.astype(str))
    if len(clash):
        raise ValueError(f"cannot name the noisy copies: id {clash[0]!r} is already taken")
    return new


def add_gaussian_noise(
    ds: ImageSet,
    n: int,
    std: float,
    seed: int = 0,
    mode: str = "append",
) -> tuple[ImageSet, np.ndarray]:
    """Corrupt ``n`` randomly chosen images with additive Gaussian noise (paper, C3).

    Pixels are taken to [0, 1], ``N(0, std^2)`` noise is added, the result is clipped to
    [0, 1] and rounded back to uint8.

    Args:
        ds: the clean set.
        n: how many images to corrupt (chosen without replacement).
        std: noise standard deviation in [0, 1] pixel units (0.5 is half the range).
        seed: seeds both the choice of images and the noise.
        mode: ``"append"`` adds the noisy copies as ``n`` new images with new ids (the set
            grows to N + n; the paper "introduce[s] 100 noisy images"); ``"replace"``
            overwrites the chosen images in place, keeping their ids.

    Returns:
        (the new set, ids of the noisy images in it). Labels and attributes of a noisy
        image are those of its clean source.
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    if not 0 < n <= len(ds):
        raise ValueError(f"n must be in 1..{len(ds)} (the set's size), got {n}")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(ds), size=n, replace=False))
    clean = ds.images[torch.from_numpy(chosen)].numpy().astype(np.float64) / 255.0
    noisy = np.clip(clean + rng.normal(0.0, std, size=clean.shape), 0.0, 1.0)
    noisy_u8 = torch.from_numpy(np.rint(noisy * 255.0).astype(np.uint8))
    name = f"{ds.name}-noisy{n}"
    if mode == "replace":
        images = ds.in_memory().images.clone()
        images[torch.from_numpy(chosen)] = noisy_u8
        out = ImageSet(images=images, ids=ds.ids, labels=ds.labels, attributes=ds.attributes,
                       name=name, classes=ds.classes)
        return out, ds.ids[chosen].copy()
    new_ids = _noisy_ids(ds.ids, chosen)
    copies = ImageSet(images=noisy_u8, ids=new_ids, labels=None if ds.labels is None else ds.labels[chosen],
                      attributes=None if ds.attributes is None else ds.attributes.iloc[chosen],
                      name=name, classes=ds.classes)
    out = concat([ds, copies], name=name)
    return out, new_ids


def split_class(ds: ImageSet, label: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Two disjoint random halves of one class (the paper's motivating experiment).

    With an odd count the second half gets the extra image. Each half keeps the original
    order of its images.

    Raises:
        ValueError: if the set has no labels or the class has fewer than two images.
    """
    if ds.labels is None:
        raise ValueError(f"{ds.name}: split_class needs labels")
    members = np.flatnonzero(ds.labels == label)
    if len(members) < 2:
        raise ValueError(f"{ds.name}: class {label} has {len(members)} image(s); need at least 2 to split")
    perm = np.random.default_rng(seed).permutation(members)
    half = len(members) // 2
    a, b = np.sort(perm[:half]), np.sort(perm[half:])
    tag = f"{ds.name}-class{label}"
    return ds.subset(a, name=f"{tag}-a"), ds.subset(b, name=f"{tag}-b")


def duplicate_groups(ds: ImageSet) -> np.ndarray:
    """For every image, the position of the first image with identical pixels."""
    flat = ds.in_memory().images.reshape(len(ds), -1).contiguous().numpy()
    # Viewing each row as one opaque record lets np.unique compare whole images exactly.
    rows = flat.view(np.dtype((np.void, flat.shape[1])))[:, 0]
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def deduplicate(ds: ImageSet) -> tuple[ImageSet, np.ndarray]:
    """Drop exact pixel duplicates, keeping the first occurrence (the paper assumes none).

    Returns:
        (the deduplicated set, ids of the removed images). ``ds`` itself comes back when
        nothing is removed, so its cached fingerprint is kept.
    """
    first = duplicate_groups(ds)
    keep = first == np.arange(len(ds))
    if keep.all():
        return ds, ds.ids[:0].copy()
    return ds.subset(np.flatnonzero(keep)), ds.ids[~keep].copy()


def stratified_counts(labels: np.ndarray, n: int) -> dict[int, int]:
    """Images per class in a class-proportional sample of ``n`` of ``labels`` (largest remainders)."""
    classes, sizes = np.unique(labels, return_counts=True)
    quota = sizes * (n / len(labels))
    counts = np.floor(quota).astype(np.int64)
    # Largest remainders first, so the counts sum to n exactly and stay proportional.
    order = np.argsort(-(quota - counts), kind="stable")
    for i in order[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(classes.tolist(), np.minimum(counts, sizes).tolist(), strict=True))


def subsample(ds: ImageSet, n: int, seed: int = 0, stratified: bool = True) -> ImageSet:
    """``n`` images drawn without replacement, in their original order.

    Args:
        ds: the set.
        n: how many to keep (1..len(ds)).
        seed: the random seed.
        stratified: keep class proportions (largest-remainder rounding); ignored when
            the set has no labels.
    """
    if not 0 < n <= len(ds):
        raise ValueError(f"n must be in 1..{len(ds)} (the set's size), got {n}")
    rng = np.random.default_rng(seed)
    if stratified and ds.labels is not None:
        picks = [rng.choice(np.flatnonzero(ds.labels == c), size=k, replace=False)
                 for c, k in stratified_counts(ds.labels, n).items()]
        index = np.sort(np.concatenate(picks))
    else:
        index = np.sort(rng.choice(len(ds), size=n, replace=False))
    return ds.subset(index, name=f"{ds.name}-n{n}")
