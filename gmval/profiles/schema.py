"""The settings every profile has, one frozen dataclass per section; the defaults are the ``default`` profile.

:class:`Settings` is the whole profile; its fields are the sections, each read by one part
of the code (``models`` by the generator zoo of :mod:`gmval.models.zoo`, ``c1`` by notebook
02, ...). Training lengths are in epochs over the (possibly capped) training set; ``None`` for
an image count means "all of them". ``[name, kwargs]`` pairs (:data:`Named`) name an encoder,
distance or quality model and its arguments. A ``models`` setting typed ``X | dict[str, X]``
may be given per dataset (``beta: {"mnist": 4.0, ...}``); it is resolved for a generator's
dataset by :func:`gmval.models.zoo.kind_settings`.

The ``default`` numbers are sized for a CPU run of minutes; measurements that chose them are
in the comments beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gmval.precision import Precision

#: ``[name, kwargs]`` of an encoder, distance or quality model.
Named = tuple[str, dict[str, Any]]
#: Processes side by side, or ``"auto"`` (one per CPU without a GPU, one with a GPU; :mod:`gmval.parallel`).
Workers = int | Literal["auto"]

# VAE-TracIn's objectives, which the paper follows: Bernoulli with β = 4 on MNIST,
# Gaussian with β = 2 on CIFAR-10 (and on Fashion-MNIST, standing in for it).
VAE_LIKELIHOOD = {"mnist": "bernoulli", "fashion-mnist": "gaussian", "cifar10": "gaussian"}
VAE_BETA = {"mnist": 4.0, "fashion-mnist": 2.0, "cifar10": 2.0}

_EFFNET32: Named = ("efficientnet-lite0", {"resolution": 32})
_EFFNET64: Named = ("efficientnet-lite0", {"resolution": 64})
_CPU_DISTANCES: tuple[Named, ...] = (("none", {}), ("l2", {}), ("ssim", {}), ("effnet-features", {"resolution": 32}))


@dataclass(frozen=True, kw_only=True)
class VAETracInSettings:
    """:class:`~gmval.baselines.VAETracIn` arguments.

    Attributes:
        draws: Monte-Carlo z samples in the loss (the reference's 16).
        loss: ``"elbo"`` (the VAE's training loss) or ``"mse"`` (the reference code's).
        projection_dim: random projection of the gradients; None: exact gradients.
        snapshots: how many of the run's snapshots, evenly spread and ending with the last; None: all.
        train_subset: stratified subset of training images scored; None: all.
        seed: seeds the loss noise, the subset and the projection.
        chunk_size: images per per-sample-gradient batch.
    """

    # Measured ~37 per-sample gradients (16 draws, dot products included) per CPU-second,
    # so 3 snapshots x (3,000 training + 100 query) gradients take ~250 CPU-seconds: under
    # 5 minutes on one core. Snapshots matter more than the subset: on 300 images x 20
    # samples, scores from 3 of the 5 snapshots have Spearman 0.91 with all 5, the last
    # alone 0.59. Exact gradients: with 100 queries the dot products cost less than a projection.
    draws: int = 16
    loss: str = "elbo"
    projection_dim: int | None = None
    snapshots: int | None = 3
    train_subset: int | None = 3000
    seed: int = 0
    chunk_size: int = 128


@dataclass(frozen=True, kw_only=True)
class IF4GANSettings:
    """:class:`~gmval.baselines.if4gan.IF4GAN` settings.

    Attributes:
        steps: traced SGD steps after the GAN's checkpoint; None: one epoch, the reference's
            window (``default`` traces the first 80 minibatches, ~5 CPU minutes).
        lr: η_D = η_G. The reference's 1e-3 makes plain SGD from the zoo's trained DCGAN
            checkpoints diverge within a few steps (V becomes NaN); the rate they were trained
            at (with Adam) keeps the window finite.
        eval_latents / eval_seed: the fixed latents V is measured on.
        metric: ``"log-is"``.
    """

    steps: int | None = 80
    lr: float = 2e-4
    eval_latents: int = 1000
    eval_seed: int = 0
    metric: str = "log-is"


@dataclass(frozen=True, kw_only=True)
class Baselines:
    """The comparison methods of :mod:`gmval.baselines`."""

    vae_tracin: VAETracInSettings = VAETracInSettings()
    if4gan: IF4GANSettings = IF4GANSettings()


@dataclass(frozen=True, kw_only=True)
class C1:
    """Notebook 02, the identical-class test.

    Attributes:
        generators: zoo names valued; n_generated: samples per generator (the paper's m = 100).
        encoder / recall_k / ks: recall encoder, candidates per sample, reported k.
        distances: re-ranking distances.
        tracin_generators: β-VAEs also valued by VAE-TracIn (settings in ``baselines.vae_tracin``).
        embedding_generator / embedding_encoders: the encoders of the embedding ablation (Table 9)
            and the generator it values.
        size_generators / pool / size_class / sizes / repeats: the generated-set-size study
            (Fig. 7): ``repeats`` draws of m samples from a pool of ``pool`` samples of class
            ``size_class`` (``zoo.sample(..., label=size_class)``).
    """

    generators: tuple[str, ...] = ("mnist-vae", "mnist-gan", "mnist-diffusion", "fashion-mnist-vae",
                                   "fashion-mnist-gan", "fashion-mnist-diffusion")
    n_generated: int = 100
    encoder: Named = _EFFNET64
    recall_k: int = 200
    ks: tuple[int, ...] = (30, 50, 100)
    distances: tuple[Named, ...] = _CPU_DISTANCES
    tracin_generators: tuple[str, ...] = ("mnist-vae",)
    embedding_generator: str = "mnist-vae"
    embedding_encoders: tuple[Named, ...] = (("pixels", {}), ("pca", {"dim": 64}), _EFFNET32, _EFFNET64)
    size_generators: tuple[str, ...] = ("mnist-gan", "mnist-diffusion", "fashion-mnist-gan", "fashion-mnist-diffusion")
    pool: int = 100
    size_class: int = 0
    sizes: tuple[int, ...] = (1, 10, 30, 50)
    repeats: int = 10


@dataclass(frozen=True, kw_only=True)
class C2:
    """Notebook 03, the identical-attributes test on measured digit attributes.

    Attributes:
        generators / n_generated: MNIST generators valued and samples per generator.
        encoder / recall_k / ks / distances: as in :class:`C1` (the paper's k = 5, 10, 15).
        grid_rows: generated samples shown with their contributors (Fig. 4).
    """

    generators: tuple[str, ...] = ("mnist-gan", "mnist-diffusion")
    n_generated: int = 100
    encoder: Named = _EFFNET64
    recall_k: int = 200
    ks: tuple[int, ...] = (5, 10, 15)
    distances: tuple[Named, ...] = _CPU_DISTANCES
    grid_rows: int = 6


@dataclass(frozen=True, kw_only=True)
class PoorSamples:
    """Samples corrupted by Gaussian noise (as the noisy training images are) and valued with the others,
    so that quality calibration (Fig. 9) has samples to correct (:func:`gmval.models.zoo.sample_with_poor`).

    Attributes:
        n: how many; noise_std: the noise's std in [0, 1] pixel units.
    """

    n: int = 1000
    noise_std: float = 0.5


@dataclass(frozen=True, kw_only=True)
class C3:
    """Notebook 04, out-of-distribution detection on noisy MNIST.

    Attributes:
        generator / n_generated: the noisy-MNIST GAN and how many of its samples are valued.
        poor: deliberately poor samples valued beside those.
        encoder / recall_k / k / distances: the valuator, as in :class:`C1`.
        qualities: quality models compared with no calibration (Fig. 9).
        grid_rows: generated samples shown per end of the quality scale (Figs. 3 and 8).
    """

    generator: str = "noisy-mnist-gan"
    n_generated: int = 10000
    poor: PoorSamples = PoorSamples()
    encoder: Named = _EFFNET32
    recall_k: int = 100
    k: int = 30
    distances: tuple[Named, ...] = (("none", {}), ("l2", {}), ("effnet-features", {"resolution": 32}))
    qualities: tuple[Named, ...] = (("none", {}), ("realism", {}), ("niqe", {}), ("brisque", {}))
    grid_rows: int = 3


@dataclass(frozen=True, kw_only=True)
class C4:
    """Notebook 05, efficiency.

    Attributes:
        generators / n_generated: β-VAEs whose samples are timed (the paper's Table 4 uses 100).
        encoder / recall_k / k / distances / qualities: the timed variants (every distance
            without calibration, and No-Rerank with each quality model).
        throughput_images: training images embedded without cache to measure the one-time cost.
        tracin_probe: training images whose VAE-TracIn gradients are timed; the time is scaled
            up to the C1 subset (``baselines.vae_tracin.train_subset``), as the cost is linear in
            it (None: time the whole subset).
        scaling_encoder / sizes: the encoder and training-set sizes of the scaling study (Figs. 10, 11).
        noisy_distances: variants timed over a whole valuation of noisy MNIST (Table 4's C3 rows).
        pq_configs / recall_ks: approximate indexes (:meth:`gmval.recall.RecallConfig.parse`
            specs) and the K at which recall@K, search time and the identical-class ratio after
            l2 re-ranking are measured against exact search (Fig. 12, App. P).
    """

    generators: tuple[str, ...] = ("mnist-vae", "fashion-mnist-vae")
    n_generated: int = 100
    encoder: Named = _EFFNET64
    recall_k: int = 200
    k: int = 30
    distances: tuple[Named, ...] = _CPU_DISTANCES
    qualities: tuple[Named, ...] = (("realism", {}), ("niqe", {}), ("brisque", {}))
    throughput_images: int = 2000
    tracin_probe: int | None = 500   # of the 3,000 C1 images
    scaling_encoder: Named = _EFFNET32
    sizes: tuple[int, ...] = (1000, 3000, 10000, 30000)
    noisy_distances: tuple[Named, ...] = (("none", {}), ("l2", {}), ("effnet-features", {"resolution": 32}))
    pq_configs: tuple[dict[str, Any], ...] = (
        {"index": "pq", "m": 16, "nbits": 8}, {"index": "pq", "m": 64, "nbits": 8},
        {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64},
        {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64, "refine": 4}, {"index": "hnsw"})
    recall_ks: tuple[int, ...] = (100, 200, 400, 700)


@dataclass(frozen=True, kw_only=True)
class Ablation:
    """Notebook 08, the valuation engine on real MNIST.

    Attributes:
        n_train / n_generated: training digits (stratified subsample) and held-out test digits
            standing in for generated images.
        encoders: recall encoders compared with No-Rerank.
        rerank_encoder / distances: the recall encoder under the re-ranking comparison, and the
            distances compared.
        temperatures: values of T in exp(-d/T) compared.
    """

    n_train: int = 30000   # the generators' training set (models.train_images): its embeddings are cached
    n_generated: int = 1000
    encoders: tuple[Named, ...] = (("pixels", {}), ("pca", {"dim": 64}), _EFFNET32, _EFFNET64)
    rerank_encoder: Named = _EFFNET64
    distances: tuple[Named, ...] = _CPU_DISTANCES
    temperatures: tuple[float | Literal["auto"], ...] = (1.0, "auto", 0.1, 0.02)


@dataclass(frozen=True, kw_only=True)
class Motivation:
    """Notebook 01, Sec. 2.1.2, Fig. 1 and Table 6.

    Attributes:
        generators: zoo names whose training set holds one half (X_v2) of the class
            ``models.half_class`` and not the other (X_v1; :func:`gmval.models.zoo.class_halves`):
            the ``motivation-*`` pair, trained on X_v2 alone (``default``, ``paper``), or, where
            ``models.train_images`` caps the training split at a stratified half or less
            (``ci``), the stand-in's own models, whose unseen half is what the cap left out.
        n_generated: samples of that class valued.
        encoder / k: the valuator's recall encoder and contributors per sample (No-Rerank).
        tsne_points / perplexity: points per group (X_v1, X_v2, generated) in the t-SNE map.
    """

    generators: tuple[str, ...] = ("motivation-gan", "motivation-diffusion")
    n_generated: int = 500
    encoder: Named = _EFFNET64
    k: int = 30
    tsne_points: int = 500
    perplexity: float = 30.0


@dataclass(frozen=True, kw_only=True)
class TracInOverrides:
    """VAE-TracIn settings of a counterfactual study, over ``baselines.vae_tracin`` (same meanings)."""

    draws: int = 4
    snapshots: int | None = 3
    train_subset: int | None = None
    chunk_size: int = 128


@dataclass(frozen=True, kw_only=True)
class TRAKSettings:
    """:class:`~gmval.baselines.TRAK` on the full-set models of the first ``models`` training seeds (an ensemble).

    Attributes:
        projection_dim: the gradients' random projection.
        ridge: λ relative to the mean eigenvalue of ΦᵀΦ.
        draws: fixed Monte-Carlo draws of the loss.
        seed: the noise's and the projection's seed.
        chunk_size: images per per-sample-gradient batch.
    """

    models: int = 1
    projection_dim: int = 1024
    # Fixed a priori: on a two-seed run TRAK's LDS was -0.03 at 1e-2 and 0.15 at >= 100 (where it
    # becomes a projected-gradient dot product), but picking it that way would tune on the
    # evaluation set, as D-TRAK does.
    ridge: float = 1e-2
    draws: int = 4
    seed: int = 0
    chunk_size: int = 128


@dataclass(frozen=True, kw_only=True)
class DiffusionTRAKSettings(TRAKSettings):
    """:class:`TRAKSettings` of the diffusion study, with ``timesteps`` of the differentiated denoising loss."""

    timesteps: int = 10
    draws: int = 1
    chunk_size: int = 32


@dataclass(frozen=True, kw_only=True)
class Removal:
    """Top-k removal: one retraining per (sample, k, method), ``n_samples × len(ks) × (len(methods) + 1)`` in all.

    Attributes:
        n_samples: generated samples; ks: images removed.
        methods: names of the LDS table compared with random removal.
    """

    n_samples: int = 2
    ks: tuple[int, ...] = (100,)
    methods: tuple[str, ...] = ("GMValuator (none)", "pixel top-k", "VAE-TracIn", "TRAK")


@dataclass(frozen=True, kw_only=True)
class VAERecipe:
    """The β-VAE retrained on every subset of a counterfactual study.

    Attributes:
        epochs / batch_size / optimizer / lr / precision: training (``precision`` as in :class:`Training`).
        latent_dim / hidden / beta / likelihood: the architecture and objective (:class:`~gmval.models.vae.VAEConfig`).
        full_keep_every: snapshot cadence (steps) of the model on the whole set, the one that draws
            the generated samples and that VAE-TracIn differentiates (0: none).
    """

    # One subset model (2,500 digits, 6 epochs, batch 64) took 6-7 s in fp32 on 2 quiet CPU
    # cores; bf16 channels-last is ~1.3x faster per step.
    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    precision: Precision = "auto"
    latent_dim: int = 32
    hidden: int = 256
    beta: float = VAE_BETA["mnist"]
    likelihood: str = VAE_LIKELIHOOD["mnist"]
    full_keep_every: int = 156


@dataclass(frozen=True, kw_only=True)
class UNetSchedule:
    """What both diffusion recipes (:class:`UNetRecipe`, :class:`DiffusionTraining`) set, with the same meanings.

    Attributes:
        layers_per_block / norm_groups: the UNet's depth per level and its GroupNorm groups.
        beta_schedule / prediction_type: the noise schedule and the prediction target.
        ema_decay: of the weight average, which samples; p_uncond: label dropout for guidance.
        sampling_steps: DDIM steps.
    """

    layers_per_block: int = 1
    norm_groups: int = 8
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    ema_decay: float = 0.995
    p_uncond: float = 0.1
    sampling_steps: int = 25


@dataclass(frozen=True, kw_only=True)
class UNetRecipe(UNetSchedule):
    """The class-conditional diffusion model retrained on every subset (:class:`~gmval.counterfactual.DiffusionRecipe`).

    Attributes:
        epochs / batch_size / lr / precision: training.
        block_out_channels / attention: the UNet's widths and where it attends.
        guidance_scale (and ``sampling_steps``): only shape the generated samples, drawn from the
            full model with balanced classes.
        full_keep_every: as in :class:`VAERecipe` (no method of the study needs snapshots: 0).
    """

    # One subset model (500 digits, 10 epochs of batch 32 = 150 steps of an (8, 16, 16) UNet)
    # took 16 s (29-31 CPU-s) on 2 quiet CPU cores, the full model (1,000 digits) 28 s. The full
    # model (310 steps) draws noisy but readable digits: the zoo's MNIST classifier puts 70% of
    # 100 samples in the class they were asked for.
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    precision: Precision = "fp32"
    block_out_channels: tuple[int, ...] = (8, 16, 16)
    attention: tuple[bool, ...] = (False, False, False)
    guidance_scale: float = 2.0
    full_keep_every: int = 0


@dataclass(frozen=True, kw_only=True)
class RetrainingStudy:
    """What the counterfactual studies of notebook 09 (:mod:`gmval.counterfactual`) share: LDS and top-k
    removal by retraining one recipe (a block named after its model kind, in each subclass) on subsets.

    Attributes:
        dataset / n_train / seed: the small training set every model is retrained on (a
            stratified subsample of the training split, drawn with ``seed``).
        fraction / n_subsets / subset_seed: the random subsets (D-TRAK: α = 0.5, 64 subsets).
        train_seeds: training seeds per subset, whose outputs are averaged (D-TRAK: 3).
        workers: processes retraining side by side (as ``models.workers``).
        checkpoint_seconds: how often a running retraining saves its resumable checkpoint.
        n_generated / generated_seed: samples drawn from the full-set model.
        loss_draws / loss_seed: fixed draws of the loss each model is measured with.
        n_boot: bootstrap resamples of the LDS interval.
        encoder / k / temperature / distances / qualities: the GMValuator variants (every
            distance × quality pair).
        pixel_k: contributors of the raw-pixel top-k baseline.
        tracin: VAE-TracIn on the full model (None: skip it).
        trak / removal: as their classes say.
    """

    dataset: str = "mnist"
    n_train: int = 5000
    seed: int = 0
    fraction: float = 0.5
    n_subsets: int = 32
    subset_seed: int = 0
    train_seeds: tuple[int, ...] = (0,)
    workers: Workers = "auto"
    checkpoint_seconds: float = 60.0
    n_generated: int = 100
    generated_seed: int = 1
    loss_draws: int = 32
    loss_seed: int = 0
    n_boot: int = 1000
    encoder: Named = _EFFNET32
    k: int = 100
    temperature: float | Literal["auto"] = "auto"
    distances: tuple[Named, ...] = (("none", {}), ("l2", {}), ("effnet-features", {"resolution": 32}))
    qualities: tuple[Named, ...] = (("none", {}), ("realism", {}))
    pixel_k: int = 100
    tracin: TracInOverrides | None = TracInOverrides()
    trak: TRAKSettings = TRAKSettings()
    # One method per family, as in the paper profile (the LDS table compares every GMValuator
    # variant; on two samples their removal effects did not differ: 0.60, 0.74 and -0.25 for
    # none, l2 and effnet-features, against 2.96 for TRAK and -2.42 for random): 4 methods x 2
    # samples x 1 k = 8 retrainings plus 2 random.
    removal: Removal = Removal()


@dataclass(frozen=True, kw_only=True)
class Counterfactual(RetrainingStudy):
    """The study on a β-VAE, measured by its negative ELBO (``loss_draws`` Monte-Carlo draws).

    Attributes:
        vae: the retraining recipe, the same for every subset.
    """

    # Measured on 2 quiet CPU cores: two workers train 32 subsets in 117 s, the full model (5,000
    # digits) 12 s. With one training seed, one TRAK model and the removal lists here (10
    # retrainings, 4 in the diffusion study), all of notebook 09 took 987 s on a fresh clone; with
    # 14 and 6 removal retrainings it took 921-1,098 s (three days of this shared VM; 21 minutes
    # without workers), the 14 retrainings 114-125 s, now 84 s. Earlier, with 2 seeds, 2 TRAK
    # models and 42 removal retrainings, this part alone took ~18 minutes.
    vae: VAERecipe = VAERecipe()


@dataclass(frozen=True, kw_only=True)
class CounterfactualDiffusion(RetrainingStudy):
    """The study on a class-conditional diffusion model (part 2).

    Attributes:
        diffusion: the retraining recipe.
        loss_timesteps: the measured output is the denoising loss averaged over ``loss_timesteps``
            evenly spaced steps × ``loss_draws`` fixed noise draws per sample, conditioned on the
            sample's class (:func:`~gmval.counterfactual.diffusion_sample_loss`).
        tracin: None (VAE-TracIn is a VAE method).
        trak: with ``timesteps`` and ``draws`` of the differentiated denoising loss.
    """

    # Measured on 2 quiet CPU cores: 32 subsets x 1 seed = 517 s (305 s on two workers), TRAK
    # (1,100 gradients x 10 timesteps) 36 s, removal 1 x 1 x (3 methods + random) = 4 retrainings
    # 99 s (6 took 134-150 s). A second training seed would add ~9 minutes, so default uses one
    # (no seed agreement).
    n_train: int = 1000
    loss_draws: int = 2
    tracin: TracInOverrides | None = None
    trak: DiffusionTRAKSettings = DiffusionTRAKSettings()
    # One method per family, as in the paper profile: 3 retrainings plus 1 random.
    removal: Removal = Removal(n_samples=1, methods=("GMValuator (none)", "pixel top-k", "TRAK"))
    diffusion: UNetRecipe = UNetRecipe()
    loss_timesteps: int = 10


@dataclass(frozen=True, kw_only=True)
class HalfClassEpochs:
    """Training length of each ``motivation-*`` generator, in epochs over its half class."""

    # The last epoch of its scored curve (figures/training/motivation-gan_curve.csv), the lowest
    # FD of the run.
    gan: int = 300
    # The last epoch of the scored curve that passes the gate
    # (figures/training/motivation-diffusion_curve.csv, `python -m gmval.models.curve`).
    diffusion: int = 90


@dataclass(frozen=True, kw_only=True)
class HalfClassOverrides:
    """Settings of ``models.<kind>`` that a ``motivation-*`` generator takes over its kind's.

    Each key must be one of that kind's settings (:func:`gmval.models.zoo.kind_settings` checks).
    """

    # Without DiffAugment the discriminator memorises the half class and the generator never
    # draws a T-shirt (the curve without it is in the commit that added this setting).
    gan: dict[str, Any] = field(default_factory=lambda: {"augment": "translation,cutout"})
    diffusion: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HalfClass:
    """The motivation experiment's class, on one half of which alone the ``motivation-*`` generators are trained.

    Attributes:
        label: the class (CIFAR-10's 0 is "airplane", the paper's choice; Fashion-MNIST's 0 is "T-shirt/top").
        epochs: their training lengths.
        overrides: their settings that differ from their kind's (``models.<kind>``).
    """

    label: int = 0
    epochs: HalfClassEpochs = HalfClassEpochs()
    overrides: HalfClassOverrides = HalfClassOverrides()


@dataclass(frozen=True, kw_only=True)
class NoisyImages:
    """The out-of-distribution test's corruption: ``n`` images with Gaussian noise of ``std`` in [0, 1]
    pixel units, appended to MNIST (the paper gives no std)."""

    n: int = 100
    std: float = 0.5


@dataclass(frozen=True, kw_only=True)
class ClassifierTraining:
    """The per-dataset classifier that labels and scores generated images.

    Attributes:
        epochs / batch_size / lr: training.
        width: channels of the first convolutions (:class:`~gmval.models.classifier.ClassifierConfig`).
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 where the hardware has bf16 matrix
            units), resolved on the training device and part of the model's key. ``default``
            pins fp32, what ``"auto"`` resolved to on the CPU that trained the committed weights.
    """

    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    width: int = 16
    precision: Precision = "fp32"


@dataclass(frozen=True, kw_only=True)
class VAETraining:
    """The zoo's β-VAEs.

    Attributes:
        epochs / batch_size / optimizer / lr / precision: training (``precision`` as in
            :class:`ClassifierTraining`).
        keep_every: snapshot cadence in steps (VAE-TracIn differentiates the snapshots; 0: none).
        latent_dim / hidden / likelihood / beta: the architecture and objective
            (:class:`~gmval.models.vae.VAEConfig`).
    """

    # beta and length chosen on the measured curves of figures/training/vae_recipe_sweep.csv.
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    keep_every: int = 936
    precision: Precision = "fp32"
    latent_dim: int = 32
    hidden: int = 256
    likelihood: str | dict[str, str] = field(default_factory=lambda: dict(VAE_LIKELIHOOD))
    beta: float | dict[str, float] = field(default_factory=lambda: {**VAE_BETA, "mnist": 2.0, "fashion-mnist": 0.5})


@dataclass(frozen=True, kw_only=True)
class GANTraining:
    """The zoo's DCGANs.

    Attributes:
        epochs / batch_size / lr / precision / keep_every: training, as in :class:`VAETraining`.
        ema_decay: of the generator's weight average, which samples.
        augment: DiffAugment policy of the discriminator's inputs (:mod:`gmval.models.diffaugment`;
            empty: none).
    """

    # Length chosen on figures/training/*-gan_curve.csv (FD still falling slowly at the end).
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-4
    ema_decay: float = 0.999
    precision: Precision = "fp32"
    keep_every: int = 0
    augment: str = ""


@dataclass(frozen=True, kw_only=True)
class DiffusionTraining(UNetSchedule):
    """The zoo's class-conditional diffusion models (:class:`~gmval.models.diffusion.DiffusionConfig`).

    Attributes:
        epochs / batch_size / lr / precision / keep_every: training, as in :class:`VAETraining`.
        block_out_channels / attention: the UNet's widths and where it attends.
        guidance_scale: of classifier-free guidance when sampling.
        sampling_precision: the UNet's precision when the zoo samples (values as ``precision``),
            part of the samples' key.
    """

    # Length and guidance chosen on figures/training/diffusion_sampling_sweep.csv: guidance trades
    # FD for class accuracy, and the gate needs both.
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    precision: Precision = "fp32"
    keep_every: int = 0
    block_out_channels: tuple[int, ...] = (16, 32, 32)
    attention: tuple[bool, ...] = (False, False, True)
    guidance_scale: float | dict[str, float] = field(
        default_factory=lambda: {"mnist": 1.25, "fashion-mnist": 1.5, "cifar10": 2.0})
    sampling_precision: Precision = "fp32"


@dataclass(frozen=True, kw_only=True)
class Models:
    """The generator zoo of :mod:`gmval.models.zoo`.

    Attributes:
        seed: seeds training, subsampling and curation.
        train_images / test_images: caps on the training split (stratified subsample) and on the
            held-out real images used for sample quality and classifier accuracy.
        quality_samples: generated images scored per generator; sample_batch: images per forward
            pass when sampling.
        cifar10_stand_in: the dataset used where the paper uses CIFAR-10 (Fashion-MNIST
            offline); it also hosts the motivation experiment's generators.
        half_class: the motivation experiment's class.
        noisy: the out-of-distribution test's corruption.
        checkpoint_seconds: how often a running training saves its resumable checkpoint.
        workers: processes :func:`~gmval.models.zoo.train_all` trains side by side.
        classifier / vae / gan / diffusion: per-model training settings.
    """

    seed: int = 0
    train_images: int | None = 30000
    test_images: int | None = 10000
    quality_samples: int = 500
    sample_batch: int = 500
    cifar10_stand_in: str = "fashion-mnist"
    half_class: HalfClass = HalfClass()
    noisy: NoisyImages = NoisyImages()
    checkpoint_seconds: float = 60.0
    # Two one-thread trainings side by side beat one two-thread training after the other on 2 CPU
    # cores: 1.6x for the GAN (ms per bf16 step: 165 with two threads; 206 in each of two
    # processes), 1.2x for the diffusion UNet.
    workers: Workers = "auto"
    classifier: ClassifierTraining = ClassifierTraining()
    vae: VAETraining = VAETraining()
    gan: GANTraining = GANTraining()
    diffusion: DiffusionTraining = DiffusionTraining()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """A whole profile: one field per section."""

    baselines: Baselines = Baselines()
    c1: C1 = C1()
    c2: C2 = C2()
    c3: C3 = C3()
    c4: C4 = C4()
    motivation: Motivation = Motivation()
    ablation: Ablation = Ablation()
    counterfactual: Counterfactual = Counterfactual()
    counterfactual_diffusion: CounterfactualDiffusion = CounterfactualDiffusion()
    models: Models = Models()
