"""Counterfactual validation of attributions: the linear datamodeling score (LDS) and top-k removal.

C1-C4 (the paper's criteria) check that contributors *look* right: same class, same
attributes, noise ranked low, fast. None of them asks whether the model actually *needed*
those images. This module asks exactly that, by retraining:

1. **LDS** (D-TRAK, ICLR 2024; see ``shared/baselines.md`` Sec. 3). Draw random half-size
   subsets S_1..S_s of a small training set, retrain the β-VAE on each, and measure the
   model's output on every generated sample j. An attribution method predicts that output
   as a sum of per-image scores, Σ_{i∈S} τ_j(i). The LDS of sample j is the Spearman
   correlation, over the subsets, between prediction and measurement; the LDS of a
   method is its mean over the generated samples.
2. **Top-k removal**: drop a sample's k highest-scored training images, retrain, and see how
   much the sample's loss rises, against dropping k random images.

Sign convention (everything here follows it): a **higher score means "this training image
helps the model produce generated sample j"**, so removing it should *raise* sample j's
loss. GMValuator's contributions and VAE-TracIn's proponent scores already read that way;
the raw-pixel baselines score ``-distance``. The measured output is therefore the
**negative** loss (the ELBO), so that a faithful method has a *positive* LDS. D-TRAK writes
the same thing as "predicted loss = −Σ τ" against the loss.

The model output is :func:`vae_sample_loss`: the VAE's own training objective (negative
β-ELBO) on the generated image, with Monte-Carlo noise fixed per sample so that every
retrained model is scored on identical draws (D-TRAK fixes its diffusion noise likewise).

Deviations from D-TRAK, all deliberate and reported:

* A β-VAE on a stratified MNIST subset instead of a diffusion model on CIFAR-2.
* The bootstrap interval resamples the **subsets and the generated samples jointly**
  (D-TRAK resamples its subsets): all samples share the same retrained models, so
  resampling samples alone would miss the model-level noise that moves every sample's
  correlation at once. Percentile interval, not BCa.
* A sample whose prediction is constant over the subsets (a method that gives none of its
  scores to any image, or gives all images the same score) has an undefined Spearman
  correlation; it counts as 0 ("predicts nothing") and is reported in ``n_constant``.
* Fewer subsets and training seeds than D-TRAK's 64 × 3 outside the ``paper`` profile.

Caching: every retrained model is a training folder (see :mod:`gmval.models.training`)
under ``<data>/models/counterfactual/cf-vae-<hash>``, the hash covering the subset mask,
the training set's fingerprint, the architecture and every training setting, so a rerun
loads instead of training and an interrupted training resumes from its checkpoint.
Per-model sample losses are artefacts in ``<data>/cache/counterfactual``.

::

    trainer = SubsetTrainer.from_profile("default")
    full = trainer.fit(trainer.full_mask())
    generated = trainer.generate(full, 100, seed=1)
    masks = random_subsets(len(trainer.train), 32, seed=0)
    losses = trainer.subset_losses(masks, generated, draws=32, seed=0)      # (32, 100)
    print(lds(attribution_matrix(result, len(trainer.train)), masks, losses))
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gmval import paths
from gmval.data import subsample
from gmval.data.curation import stratified_counts
from gmval.images import ImageSet, to_float
from gmval.models.training import TrainConfig
from gmval.models.vae import BetaVAE, VAEConfig, train_vae
from gmval.profiles import get_profile
from gmval.store import ArtifactStore, artefact_key
from gmval.valuator import ValuationResult

#: Generated images scored per forward pass in :func:`vae_sample_loss`.
LOSS_BATCH = 64


# --------------------------------------------------------------------------- subsets

def random_subsets(n: int, n_subsets: int, fraction: float = 0.5, seed: int = 0,
                   labels: np.ndarray | None = None) -> np.ndarray:
    """Boolean masks of random training subsets, each of exactly ``round(fraction * n)`` images.

    Subset ``s`` is drawn from its own generator seeded ``[seed, s]``, so the first 32 subsets
    of a 64-subset run are the 32 subsets of a 32-subset run (and their models are reused).

    Args:
        n: training-set size.
        n_subsets: how many subsets.
        fraction: share of the training set in each subset (D-TRAK: α = 0.5).
        seed: seeds the draws.
        labels: optional (n,) class labels; each subset then keeps the class proportions
            (largest-remainder rounding), as D-TRAK's stratified subsets do.

    Returns:
        (n_subsets, n) bool array; row s marks the images in subset s.

    Raises:
        ValueError: for n < 2, n_subsets < 1, a fraction outside (0, 1) or one that gives an
            empty or full subset, or labels of the wrong shape.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 to draw proper subsets, got {n}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    size = round(fraction * n)
    if not 0 < size < n:
        raise ValueError(f"fraction {fraction} of {n} images gives a subset of {size}; it must be in 1..{n - 1}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels have shape {labels.shape}, expected ({n},)")
        counts = stratified_counts(labels, size)
        members = {c: np.flatnonzero(labels == c) for c in counts}
    masks = np.zeros((n_subsets, n), dtype=bool)
    for s in range(n_subsets):
        rng = np.random.default_rng([seed, s])
        if labels is None:
            masks[s, rng.choice(n, size=size, replace=False)] = True
        else:
            for c, k in counts.items():
                masks[s, rng.choice(members[c], size=k, replace=False)] = True
    return masks


def mask_digest(mask: np.ndarray) -> str:
    """16 hex digits identifying a boolean training mask (its length included)."""
    mask = np.asarray(mask, dtype=bool)
    h = hashlib.sha256(str(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- model output

def vae_sample_loss(model: BetaVAE, images: ImageSet | torch.Tensor, draws: int = 32, seed: int = 0) -> np.ndarray:
    """Negative β-ELBO (the VAE's training loss) of each image, with fixed Monte-Carlo noise.

    Image j's ``draws`` noise vectors come from ``np.random.default_rng([seed, j])``: they
    depend only on (seed, j) and the latent size, so every retrained model is measured on
    the same draws and its loss differences are not Monte-Carlo noise.

    Args:
        model: a β-VAE (put in eval mode here).
        images: uint8 images (an :class:`ImageSet` or a (N, C, H, W) tensor).
        draws: reparameterised samples of z per image.
        seed: seeds the noise.

    Returns:
        (N,) float64 losses (nats; lower = the model explains the image better).

    Raises:
        ValueError: for draws < 1 or images of the wrong shape.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    x_all = images.images if isinstance(images, ImageSet) else images
    cfg = model.config
    if tuple(x_all.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
        raise ValueError(f"images are {tuple(x_all.shape[1:])}; the VAE expects "
                         f"{(cfg.channels, cfg.image_size, cfg.image_size)}")
    model.eval()
    device = next(model.parameters()).device
    out = np.empty(len(x_all), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(x_all), LOSS_BATCH):
            stop = min(start + LOSS_BATCH, len(x_all))
            eps = np.stack([np.random.default_rng([seed, j]).standard_normal((draws, cfg.latent_dim),
                                                                              dtype=np.float32)
                            for j in range(start, stop)])
            x = to_float(x_all[start:stop].to(device))
            out[start:stop] = model.loss(x, eps=torch.from_numpy(eps).to(device)).double().cpu().numpy()
    if not np.isfinite(out).all():
        raise FloatingPointError("non-finite VAE losses; the model may have diverged")
    return out


# --------------------------------------------------------------------------- retraining

@dataclass(frozen=True)
class SubsetTrainer:
    """Retrains one β-VAE recipe on subsets of one training set, each model cached on disk.

    Attributes:
        train: the full (small) training set; masks index its positions.
        vae: architecture and objective.
        epochs: passes over each subset (the same for every subset, as in D-TRAK).
        batch_size: images per step.
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate.
        seeds: training seeds; :meth:`subset_losses` averages the output over them.
        checkpoint_seconds: how often a running training saves its resumable checkpoint.
        root: folder of the model runs (default ``<data>/models/counterfactual``).
        cache: folder of the loss artefacts (default ``<data>/cache/counterfactual``).
        progress: show tqdm bars while training.
        full_keep_every: the model on the *whole* training set keeps weight snapshots every
            this many steps (VAE-TracIn needs them; 0: none). Snapshots do not change the
            weights, so that model is also the reference of :func:`retrain_without_topk`.
    """

    train: ImageSet
    vae: VAEConfig
    epochs: int
    batch_size: int
    optimizer: str = "adam"
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    checkpoint_seconds: float = 60.0
    root: Path = field(default_factory=lambda: paths.MODELS / "counterfactual")
    cache: Path | None = field(default_factory=lambda: paths.CACHE / "counterfactual")
    progress: bool = False
    full_keep_every: int = 0

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must hold at least one training seed")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")

    @classmethod
    def from_profile(cls, profile: str | Mapping[str, Any] = "default", root: Path | None = None,
                     progress: bool = False) -> SubsetTrainer:
        """The recipe and training set of ``profile["counterfactual"]``.

        Args:
            profile: a profile name or a profile dict.
            root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
            progress: show tqdm bars while training.
        """
        p = (get_profile(profile) if isinstance(profile, str) else profile)["counterfactual"]
        train = training_set(p)
        v = p["vae"]
        config = VAEConfig(channels=train.shape[0], image_size=train.shape[1], latent_dim=v["latent_dim"],
                           hidden=v["hidden"], beta=v["beta"], likelihood=v["likelihood"])
        models = paths.MODELS if root is None else Path(root) / "models"
        cache = paths.CACHE if root is None else Path(root) / "cache"
        return cls(train=train, vae=config, epochs=v["epochs"], batch_size=v["batch_size"],
                   optimizer=v["optimizer"], lr=v["lr"], seeds=tuple(p["train_seeds"]),
                   checkpoint_seconds=p.get("checkpoint_seconds", 60.0), root=models / "counterfactual",
                   cache=cache / "counterfactual", progress=progress, full_keep_every=v["full_keep_every"])

    def full_mask(self) -> np.ndarray:
        """The mask of the whole training set (the model that draws the generated samples)."""
        return np.ones(len(self.train), dtype=bool)

    def train_config(self, mask: np.ndarray, seed: int) -> TrainConfig:
        """The training settings of the run on ``mask`` (snapshots only for the full set)."""
        keep_every = self.full_keep_every if bool(np.all(mask)) else 0
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=seed,
                           checkpoint_seconds=self.checkpoint_seconds, keep_every=keep_every)

    def _check_mask(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self.train),):
            raise ValueError(f"a training mask must be a bool array of shape ({len(self.train)},), "
                             f"got {mask.dtype} {mask.shape}")
        if mask.sum() < 1:
            raise ValueError("a training mask must keep at least one image")
        return mask

    def folder(self, mask: np.ndarray, seed: int) -> Path:
        """Where the run on ``mask`` with ``seed`` lives (whether or not it is trained yet)."""
        mask = self._check_mask(mask)
        train = {k: v for k, v in asdict(self.train_config(mask, seed)).items() if k != "checkpoint_seconds"}
        params = {"data": self.train.fingerprint(), "mask": mask_digest(mask), "n_kept": int(mask.sum()),
                  "vae": asdict(self.vae), "optimizer": self.optimizer, "lr": self.lr, "train": train}
        return self.root / artefact_key("cf-vae", params)

    def fit(self, mask: np.ndarray, seed: int | None = None) -> BetaVAE:
        """The β-VAE trained on the images of ``mask``: loaded if done, resumed or trained otherwise.

        Args:
            mask: (n,) bool, the training images kept.
            seed: training seed (default: the first of :attr:`seeds`).

        Raises:
            ValueError: for a mask of the wrong shape or dtype, or an empty one.
        """
        mask = self._check_mask(mask)
        seed = self.seeds[0] if seed is None else seed
        data = self.train.subset(np.flatnonzero(mask), name=f"{self.train.name}-cf{mask_digest(mask)[:6]}")
        model, _ = train_vae(data, self.folder(mask, seed), self.vae, self.train_config(mask, seed),
                             optimizer=self.optimizer, lr=self.lr, params={"counterfactual": True},
                             progress=self.progress)
        return model

    def generate(self, model: BetaVAE, n: int, seed: int) -> ImageSet:
        """``n`` samples of ``model`` (decoded means of z ~ N(0, I) from ``seed``), ids 0..n-1."""
        return ImageSet(model.generate(n, seed=seed), np.arange(n), name=f"cf-vae-seed{seed}")

    def model_loss(self, mask: np.ndarray, seed: int, generated: ImageSet, draws: int, loss_seed: int) -> np.ndarray:
        """:func:`vae_sample_loss` of the model on ``mask`` with ``seed``, cached per model."""
        folder = self.folder(mask, seed)
        store = ArtifactStore(self.cache)
        params = {"model": folder.name, "generated": generated.fingerprint(), "draws": draws, "seed": loss_seed}
        art = store.load("cf-loss", params)
        if art is None:
            loss = vae_sample_loss(self.fit(mask, seed), generated, draws, loss_seed)
            art = store.save("cf-loss", params, arrays={"loss": loss})
        return np.asarray(art.array("loss", mmap=False))

    def subset_losses(self, masks: np.ndarray, generated: ImageSet, draws: int = 32, seed: int = 0) -> np.ndarray:
        """(n_subsets, m) loss of each generated sample under each subset's model, averaged over :attr:`seeds`.

        Trains every missing model first (len(masks) × len(seeds) runs at most).
        """
        masks = np.asarray(masks)
        if masks.ndim != 2 or masks.shape[1] != len(self.train):
            raise ValueError(f"masks must be (n_subsets, {len(self.train)}), got {masks.shape}")
        out = np.zeros((len(masks), len(generated)))
        for s, mask in enumerate(masks):
            for train_seed in self.seeds:
                out[s] += self.model_loss(mask, train_seed, generated, draws, seed)
        return out / len(self.seeds)


def training_set(settings: Mapping[str, Any]) -> ImageSet:
    """The small training set of a ``counterfactual`` profile entry (stratified subsample of MNIST train)."""
    from gmval.models.zoo import load_split

    full = load_split(settings["dataset"], "train")
    return subsample(full, settings["n_train"], seed=settings["seed"], stratified=True)


# --------------------------------------------------------------------------- attributions

def attribution_matrix(result: ValuationResult, n_train: int, column: str | None = None) -> np.ndarray:
    """A valuation as a dense (m generated × n train) score matrix; higher = helps produce sample j.

    * GMValuator (:class:`~gmval.valuator.ValuationResult`): entry (j, i) is the Eq. 6
      ``contribution`` of contributor i to generated image j, 0 for non-contributors. Pass
      ``column="weight"`` to drop the quality calibration (q_j only rescales row j, which
      Spearman ignores: both give the same LDS unless some q_j = 0).
    * VAE-TracIn (:class:`~gmval.baselines.vae_tracin.TracInResult`): its full ``scores``
      (n_scored, m), transposed; training images it did not score get 0.

    Args:
        result: a valuation of ``n_train`` training images.
        n_train: training-set size (the number of columns).
        column: the contributors' column to use (GMValuator only; default ``"contribution"``).

    Raises:
        ValueError: if the result refers to training indices outside 0..n_train-1, was made
            for another training-set size, or holds non-finite scores.
    """
    from gmval.baselines.vae_tracin import TracInResult

    recorded = result.config.get("n_train")
    if recorded is not None and int(recorded) != n_train:
        raise ValueError(f"the result values {recorded} training images, but n_train={n_train}")
    if isinstance(result, TracInResult):
        if column is not None:
            raise ValueError("column applies to GMValuator results only; VAE-TracIn has one score matrix")
        rows = np.asarray(result.scored_index)
        if rows.size and (rows.min() < 0 or rows.max() >= n_train):
            raise ValueError(f"VAE-TracIn scored training index {rows.max()} outside 0..{n_train - 1}")
        dense = np.zeros((result.scores.shape[1], n_train))
        dense[:, rows] = result.scores.T
    else:
        column = column or "contribution"
        c = result.contributors
        if column not in c:
            raise ValueError(f"the contributors table has no column {column!r}")
        gen, idx = c["generated_index"].to_numpy(), c["train_index"].to_numpy()
        if idx.size and (idx.min() < 0 or idx.max() >= n_train):
            raise ValueError(f"a contributor has training index {idx.max()} outside 0..{n_train - 1}")
        m = int(result.config.get("n_generated", gen.max() + 1 if gen.size else 0))
        dense = np.zeros((m, n_train))
        np.add.at(dense, (gen, idx), c[column].to_numpy(dtype=np.float64))
    if not np.isfinite(dense).all():
        raise ValueError("the attribution scores hold NaN or infinite values")
    return dense


def pixel_attribution(train: ImageSet, generated: ImageSet, k: int | None = None) -> np.ndarray:
    """Raw-pixel nearest-neighbour attribution, (m, n); higher = closer in pixel space.

    Args:
        train: training images.
        generated: generated images (same shape).
        k: None scores every training image by ``-‖x_i − x̂_j‖₂`` (pixels in [0, 1]);
            an integer scores the k nearest 1 and the rest 0 (a top-k indicator).

    Raises:
        ValueError: for images of different shapes or k outside 1..n.
    """
    if train.shape != generated.shape:
        raise ValueError(f"training images are {train.shape}, generated {generated.shape}")
    if k is not None and not 1 <= k <= len(train):
        raise ValueError(f"k={k} must be between 1 and the training-set size {len(train)}")
    a = to_float(generated.images).flatten(1).double()
    b = to_float(train.images).flatten(1).double()
    # Exact differences, not the |a|²+|b|²-2ab shortcut: an exact copy must score exactly 0.
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    if k is None:
        return -d
    top = np.argsort(d, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(d)
    np.put_along_axis(out, top, 1.0, axis=1)
    return out


# --------------------------------------------------------------------------- LDS

@dataclass(frozen=True)
class LDSResult:
    """The linear datamodeling score of one attribution method.

    Attributes:
        mean: mean over generated samples of the per-sample Spearman correlation.
        low / high: bootstrap percentile interval of the mean (resampling generated samples).
        per_sample: (m,) Spearman correlation of each generated sample (0 where undefined).
        n_subsets: subsets (retrained models) the correlations run over.
        n_constant: samples whose prediction was constant over the subsets (counted as 0).
        confidence: the interval's level.
        n_boot: bootstrap resamples.
    """

    mean: float
    low: float
    high: float
    per_sample: np.ndarray
    n_subsets: int
    n_constant: int
    confidence: float
    n_boot: int

    def row(self) -> dict[str, float | int]:
        """The scalar fields, for a results table."""
        return {"lds": self.mean, "low": self.low, "high": self.high, "n_subsets": self.n_subsets,
                "n_samples": len(self.per_sample), "n_constant": self.n_constant}


def _spearman_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman correlation of each column pair of (s, m) arrays, and which columns were constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=0), rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    denom = np.sqrt((ra ** 2).sum(axis=0) * (rb ** 2).sum(axis=0))
    constant = denom == 0
    rho = np.where(constant, 0.0, (ra * rb).sum(axis=0) / np.where(constant, 1.0, denom))
    return rho, constant


def lds(scores: np.ndarray, masks: np.ndarray, losses: np.ndarray, n_boot: int = 1000, seed: int = 0,
        confidence: float = 0.95) -> LDSResult:
    """Linear datamodeling score (D-TRAK) of an attribution, with a bootstrap interval.

    For generated sample j and subset s, the prediction is Σ_{i∈S_s} scores[j, i] and the
    measurement is ``-losses[s, j]`` (higher = the model explains sample j better), so a
    method whose high scores mark helpful images gets a positive LDS. LDS_j is the Spearman
    correlation over the subsets; the result is its mean over samples. The interval is a
    percentile bootstrap that resamples the subsets and the generated samples with
    replacement, jointly, ``n_boot`` times.

    Args:
        scores: (m, n) attribution scores, higher = helps produce sample j.
        masks: (s, n) bool subsets (from :func:`random_subsets`), in the scores' training order.
        losses: (s, m) loss of sample j under the model trained on subset s.
        n_boot: bootstrap resamples.
        seed: seeds the bootstrap.
        confidence: level of the interval.

    Raises:
        ValueError: for mismatched shapes, non-bool masks, fewer than 3 subsets, non-finite
            scores or losses, n_boot < 1, or a confidence outside (0, 1); the message names
            the offending argument.
    """
    scores, masks, losses = np.asarray(scores, dtype=np.float64), np.asarray(masks), np.asarray(losses, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (m generated, n train), got shape {scores.shape}")
    m, n = scores.shape
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be (n_subsets, {n}) to match scores {scores.shape}, got {masks.shape}")
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean, got {masks.dtype}")
    s = masks.shape[0]
    if s < 3:
        raise ValueError(f"LDS needs at least 3 subsets for a rank correlation, got {s}")
    if losses.shape != (s, m):
        raise ValueError(f"losses must be (n_subsets, m generated) = {(s, m)}, got {losses.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    if not np.isfinite(losses).all():
        raise ValueError(f"losses hold {int((~np.isfinite(losses)).sum())} NaN or infinite values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    predicted = masks.astype(np.float64) @ scores.T  # (s, m)
    rho, constant = _spearman_columns(predicted, -losses)
    rng = np.random.default_rng(seed)
    # Subsets and samples are resampled together: every sample is measured on the same
    # retrained models, so a model that is better or worse for all samples at once moves all
    # per-sample correlations alike, and resampling samples alone would hide that variance.
    boot = np.empty(n_boot)
    for b in range(n_boot):
        rows, cols = rng.integers(0, s, size=s), rng.integers(0, m, size=m)
        boot[b] = _spearman_columns(predicted[rows][:, cols], -losses[rows][:, cols])[0].mean()
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return LDSResult(mean=float(rho.mean()), low=float(low), high=float(high), per_sample=rho, n_subsets=s,
                     n_constant=int(constant.sum()), confidence=confidence, n_boot=n_boot)


# --------------------------------------------------------------------------- top-k removal

def _top_k(row: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # Ties (e.g. the zeros of every non-contributor) are broken at random, not by index,
    # so a k beyond a method's contributors removes random images rather than low indices.
    jitter = rng.permutation(len(row))
    order = np.lexsort((jitter, -row))
    return order[:k]


def retrain_without_topk(trainer: SubsetTrainer, methods: Mapping[str, np.ndarray], generated: ImageSet,
                         samples: Sequence[int], ks: Sequence[int], draws: int = 32, loss_seed: int = 0,
                         seed: int = 0, train_seed: int | None = None) -> pd.DataFrame:
    """Remove each sample's top-k scored training images, retrain, and measure its loss change.

    For every generated sample j in ``samples``, every k in ``ks`` and every method (plus
    ``"random"``: k training images drawn from ``[seed, j, k]``), one model is trained on the
    full set minus those k images, with the full model's recipe and seed, and the change of
    sample j's loss against the full model is recorded. A faithful method raises the loss
    more than random removal. Removal is per sample (removing the union over samples would
    mix every sample's contributors into each measurement).

    Cost: ``len(samples) × len(ks) × (len(methods) + 1)`` retrainings on ~n images each
    (every one cached, like :meth:`SubsetTrainer.fit`).

    Args:
        trainer: the recipe and the full training set.
        methods: name -> (m, n) score matrix (higher = helps produce sample j).
        generated: the generated samples (drawn from the full model).
        samples: positions in ``generated`` of the samples to test.
        ks: numbers of training images removed, each in 1..n-1.
        draws / loss_seed: the loss's Monte-Carlo draws and noise seed.
        seed: seeds the random removal and the tie-breaking of scores.
        train_seed: training seed of every model (default: the trainer's first).

    Returns:
        One row per (sample, k, method): ``sample``, ``k``, ``method``, ``loss_full``,
        ``loss_removed``, ``delta`` (removed − full; positive = the sample got harder).

    Raises:
        ValueError: for a k outside 1..n-1, a sample outside the generated set, a method
            name ``"random"``, or a score matrix of the wrong shape or with NaNs.
    """
    n, m = len(trainer.train), len(generated)
    train_seed = trainer.seeds[0] if train_seed is None else train_seed
    for k in ks:
        if not 1 <= int(k) <= n - 1:
            raise ValueError(f"k={k} must be between 1 and n-1 = {n - 1} (the training set has {n} images)")
    for j in samples:
        if not 0 <= int(j) < m:
            raise ValueError(f"sample {j} is outside the {m} generated images")
    if "random" in methods:
        raise ValueError("'random' is the built-in baseline; give the method another name")
    for name, sc in methods.items():
        sc = np.asarray(sc)
        if sc.shape != (m, n):
            raise ValueError(f"scores of {name!r} have shape {sc.shape}, expected {(m, n)}")
        if not np.isfinite(sc).all():
            raise ValueError(f"scores of {name!r} hold NaN or infinite values")
    full = trainer.full_mask()
    base = trainer.model_loss(full, train_seed, generated, draws, loss_seed)
    rows = []
    for j in samples:
        j = int(j)
        for k in ks:
            k = int(k)
            removals = {name: _top_k(np.asarray(sc)[j], k, np.random.default_rng([seed, j, k, 1]))
                        for name, sc in methods.items()}
            removals["random"] = np.random.default_rng([seed, j, k, 0]).choice(n, size=k, replace=False)
            for name, drop in removals.items():
                mask = full.copy()
                mask[drop] = False
                loss = trainer.model_loss(mask, train_seed, generated, draws, loss_seed)[j]
                rows.append({"sample": j, "k": k, "method": name, "loss_full": float(base[j]),
                             "loss_removed": float(loss), "delta": float(loss - base[j])})
    return pd.DataFrame(rows)
