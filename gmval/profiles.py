"""Run sizes in one place: ``ci`` (seconds), ``default`` (CPU minutes), ``paper`` (GPU, full scale).

Plain data only: every consumer reads its own key (``"models"`` for the generator zoo of
:mod:`gmval.models.zoo`). Training lengths are in epochs over the (possibly capped)
training set; ``None`` for an image count means "all of them".

``models`` keys:

* ``seed``: seeds training, subsampling and curation.
* ``train_images`` / ``test_images``: caps on the training split (stratified subsample) and
  on the held-out real images used for sample quality and classifier accuracy.
* ``quality_samples``: generated images scored per generator; ``sample_batch``: images per
  forward pass when sampling.
* ``cifar10_stand_in``: the dataset used where the paper uses CIFAR-10 (Fashion-MNIST
  offline); it also hosts the motivation experiment's generators.
* ``half_class``: that experiment's class (``label``; CIFAR-10's 0 is "airplane", the
  paper's choice, Fashion-MNIST's 0 is "T-shirt/top"), on one half of which alone the
  ``motivation-*`` generators are trained, for ``epochs`` (per kind) over that half, with the
  optional ``overrides`` (per kind) of their ``models.<kind>`` settings.
* ``noisy``: the out-of-distribution test's corruption (``n`` images with Gaussian noise of
  ``std`` in [0, 1] pixel units, appended to MNIST; the paper gives no std).
* ``checkpoint_seconds``: how often a running training saves its resumable checkpoint.
* ``workers``: processes :func:`~gmval.models.zoo.train_all` trains side by side (``"auto"``:
  one per CPU without a GPU, one with a GPU; :mod:`gmval.parallel`).
* ``classifier`` / ``vae`` / ``gan`` / ``diffusion``: per-model training settings; an optional
  ``precision`` (``"fp32"``, the default, ``"bf16"`` or ``"auto"``: bf16 where the hardware has
  bf16 matrix units) is resolved on the training device and is part of the model's key;
  ``diffusion.sampling_precision`` (the same values, default ``"fp32"``) is the UNet's precision
  when the zoo samples, part of the samples' key; ``gan.augment`` (optional, default none) is the
  DiffAugment policy of the discriminator's inputs (:mod:`gmval.models.diffaugment`).

``c2`` keys (notebook 03, the identical-attributes test on measured digit attributes):

* ``generators`` / ``n_generated``: MNIST generators valued and samples per generator.
* ``encoder`` / ``recall_k`` / ``ks`` / ``distances``: as in ``c1`` (the paper's k = 5, 10, 15).
* ``grid_rows``: generated samples shown with their contributors (Fig. 4).

``c3`` keys (notebook 04, out-of-distribution detection on noisy MNIST):

* ``generator`` / ``n_generated``: the noisy-MNIST GAN and how many of its samples are valued.
* ``poor``: ``{"n", "noise_std"}``: that many further samples corrupted by Gaussian noise (as
  the noisy training images are), deliberately poor ones valued with the others, so that
  quality calibration (Fig. 9) has samples to correct (:func:`gmval.models.zoo.sample_with_poor`).
* ``encoder`` / ``recall_k`` / ``k`` / ``distances``: the valuator, as in ``c1``.
* ``qualities``: ``[name, kwargs]`` quality models compared with no calibration (Fig. 9).
* ``grid_rows``: generated samples shown per end of the quality scale (Figs. 3 and 8).

``c4`` keys (notebook 05, efficiency):

* ``generators`` / ``n_generated``: β-VAEs whose samples are timed (the paper's Table 4 uses 100).
* ``encoder`` / ``recall_k`` / ``k`` / ``distances`` / ``qualities``: the timed variants (every
  distance without calibration, and No-Rerank with each quality model).
* ``throughput_images``: training images embedded without cache to measure the one-time cost.
* ``tracin_probe``: training images whose VAE-TracIn gradients are timed; the time is scaled
  up to the C1 subset (``baselines.vae_tracin.train_subset``), as the cost is linear in it
  (None: time the whole subset).
* ``scaling_encoder`` / ``sizes``: the encoder and training-set sizes of the scaling study (Figs. 10, 11).
* ``noisy_distances``: variants timed over a whole valuation of noisy MNIST (Table 4's C3 rows).
* ``pq_configs`` / ``recall_ks``: approximate indexes and the K at which recall@K, search
  time and the identical-class ratio after l2 re-ranking are measured against exact search
  (Fig. 12, App. P).

``ablation`` keys (notebook 08, the valuation engine on real MNIST):

* ``n_train`` / ``n_generated``: training digits (stratified subsample) and held-out test
  digits standing in for generated images.
* ``encoders``: ``[name, kwargs]`` recall encoders compared with No-Rerank.
* ``rerank_encoder`` / ``distances``: the recall encoder under the re-ranking comparison,
  and the ``[name, kwargs]`` distances compared.
* ``temperatures``: values of T in exp(-d/T) compared.

``motivation`` keys (notebook 01, Sec. 2.1.2, Fig. 1 and Table 6):

* ``generators``: zoo names whose training set holds one half (X_v2) of the class
  ``models.half_class`` and not the other (X_v1; :func:`gmval.models.zoo.class_halves`): the
  ``motivation-*`` pair, trained on X_v2 alone (``default``, ``paper``), or, where
  ``models.train_images`` caps the training split at a stratified half or less (``ci``), the
  stand-in's own models, whose unseen half is what the cap left out.
* ``n_generated``: samples of that class valued; ``encoder`` / ``k``: the valuator's recall
  encoder and contributors per sample (No-Rerank).
* ``tsne_points`` / ``perplexity``: points per group (X_v1, X_v2, generated) in the t-SNE map.

``c1`` keys (notebook 02, the identical-class test):

* ``generators``: zoo names valued; ``n_generated``: samples per generator (the paper's m = 100).
* ``encoder`` / ``recall_k`` / ``ks``: recall encoder, candidates per sample, reported k.
* ``distances``: ``[name, kwargs]`` re-ranking distances.
* ``tracin_generators``: β-VAEs also valued by VAE-TracIn (settings in ``baselines.vae_tracin``).
* ``embedding_encoders``: encoders of the embedding ablation (Table 9) on ``embedding_generator``.
* ``size_generators`` / ``pool`` / ``size_class`` / ``sizes`` / ``repeats``: the generated-set-size
  study (Fig. 7): ``repeats`` draws of m samples from a pool of ``pool`` samples of class
  ``size_class`` (``zoo.sample(..., label=size_class)``).

``counterfactual`` keys (notebook 09, :mod:`gmval.counterfactual`: LDS and top-k removal by retraining):

* ``dataset`` / ``n_train`` / ``seed``: the small training set every model is retrained on (a
  stratified subsample of the training split, drawn with ``seed``).
* ``fraction`` / ``n_subsets`` / ``subset_seed``: the random subsets (D-TRAK: α = 0.5, 64 subsets);
  ``train_seeds``: training seeds per subset, whose outputs are averaged (D-TRAK: 3).
* ``vae``: the retraining recipe, the same for every subset: ``epochs`` / ``batch_size`` /
  ``optimizer`` / ``lr`` and the architecture (``latent_dim``, ``hidden``, ``beta``,
  ``likelihood``); ``full_keep_every``: snapshot cadence of the model on the whole set (the one
  that draws the generated samples and that VAE-TracIn differentiates).
* ``n_generated`` / ``generated_seed``: samples drawn from that model; ``loss_draws`` /
  ``loss_seed``: fixed Monte-Carlo draws of the negative ELBO each model is measured with;
  ``n_boot``: bootstrap resamples of the LDS interval.
* ``encoder`` / ``k`` / ``temperature`` / ``distances`` / ``qualities``: the GMValuator variants
  (every distance × quality pair); ``pixel_k``: contributors of the raw-pixel top-k baseline.
* ``tracin``: VAE-TracIn overrides of ``baselines.vae_tracin`` on the full model (None: skip it).
* ``trak``: :class:`~gmval.baselines.TRAK` on the full-set models of the first ``models``
  training seeds (an ensemble): ``projection_dim``, ``ridge`` (λ relative to the mean eigenvalue
  of ΦᵀΦ), ``draws`` (fixed Monte-Carlo draws of the loss), ``seed`` (noise and projection) and
  ``chunk_size`` (images per per-sample-gradient batch).
* ``removal``: top-k removal: ``n_samples`` generated samples, ``ks`` images removed, and the
  ``methods`` (names of the LDS table) compared with random removal; one retraining per
  (sample, k, method), ``n_samples × len(ks) × (len(methods) + 1)`` in all.
* ``workers``: processes retraining side by side (as ``models.workers``; default 1).

``counterfactual_diffusion`` keys (notebook 09, part 2: the same study on a class-conditional
diffusion model, :class:`~gmval.counterfactual.DiffusionRecipe`): the keys of ``counterfactual``, except

* ``diffusion`` instead of ``vae``: the retraining recipe (``epochs`` / ``batch_size`` / ``lr`` /
  ``ema_decay`` and the architecture and schedule keys of ``models.diffusion``; ``sampling_steps`` /
  ``guidance_scale`` only shape the generated samples, drawn from the full model with balanced classes).
* ``loss_timesteps`` / ``loss_draws`` / ``loss_seed``: the measured output is the denoising loss
  averaged over ``loss_timesteps`` evenly spaced steps × ``loss_draws`` fixed noise draws per sample,
  conditioned on the sample's class (:func:`~gmval.counterfactual.diffusion_sample_loss`).
* ``trak``: as above, with ``timesteps`` and ``draws`` of the differentiated denoising loss.
* no ``tracin`` (VAE-TracIn is a VAE method).

``baselines`` keys (the comparison methods of :mod:`gmval.baselines`):

* ``vae_tracin``: :class:`~gmval.baselines.VAETracIn` arguments: ``draws`` (Monte-Carlo z
  samples in the loss; the reference's 16), ``loss`` (``"elbo"``, the VAE's training loss, or
  ``"mse"``, the reference code's), ``projection_dim`` (None: exact gradients),
  ``snapshots`` (how many of the run's snapshots, evenly spread and ending with the last;
  None: all), ``train_subset`` (stratified subset of training images scored; None: all),
  ``seed`` and ``chunk_size`` (images per per-sample-gradient batch).
* ``if4gan``: :class:`~gmval.baselines.if4gan.IF4GAN` settings: ``steps`` (traced SGD
  steps after the GAN's checkpoint; None: one epoch, the reference's window; ``default``
  traces the first 80 minibatches, ~5 CPU minutes), ``lr`` (η_D = η_G, the reference's 1e-3),
  ``eval_latents`` / ``eval_seed`` (fixed latents V is measured on) and ``metric`` (``"log-is"``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# VAE-TracIn's objectives, which the paper follows: Bernoulli with β = 4 on MNIST,
# Gaussian with β = 2 on CIFAR-10 (and on Fashion-MNIST, standing in for it).
_VAE_LIKELIHOOD = {"mnist": "bernoulli", "fashion-mnist": "gaussian", "cifar10": "gaussian"}
_VAE_BETA = {"mnist": 4.0, "fashion-mnist": 2.0, "cifar10": 2.0}

PROFILES: dict[str, dict[str, Any]] = {
    "ci": {
        "baselines": {
            # Smoke scale: 220 gradients of 4 draws, a few CPU-seconds.
            "vae_tracin": {"draws": 4, "loss": "elbo", "projection_dim": None, "snapshots": 1,
                           "train_subset": 200, "seed": 0, "chunk_size": 128},
            "if4gan": {"steps": 2, "lr": 1e-3, "eval_latents": 64, "eval_seed": 0, "metric": "log-is"},
        },
        "c2": {
            "generators": ["mnist-gan"],
            "n_generated": 20,
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "recall_k": 50,
            "ks": [5, 10, 15],
            "distances": [["none", {}], ["l2", {}]],
            "grid_rows": 3,
        },
        "c3": {
            "generator": "noisy-mnist-gan",
            "n_generated": 40,
            "poor": {"n": 8, "noise_std": 0.5},
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "recall_k": 50,
            "k": 10,
            "distances": [["none", {}], ["l2", {}]],
            "qualities": [["none", {}], ["realism", {}], ["niqe", {}]],
            "grid_rows": 2,
        },
        "c4": {
            "generators": ["mnist-vae"],
            "n_generated": 20,
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "recall_k": 50,
            "k": 30,
            "distances": [["none", {}], ["l2", {}]],
            "qualities": [["realism", {}]],
            "throughput_images": 200,
            "tracin_probe": 50,
            "scaling_encoder": ["efficientnet-lite0", {"resolution": 32}],
            "sizes": [100, 300],
            "noisy_distances": [["none", {}]],
            "pq_configs": [{"index": "pq", "m": 16, "nbits": 8}, {"index": "hnsw"}],
            "recall_ks": [50, 100],
        },
        "motivation": {
            "generators": ["fashion-mnist-gan", "fashion-mnist-diffusion"],
            "n_generated": 20,
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "k": 10,
            "tsne_points": 40,
            "perplexity": 10.0,
        },
        "c1": {
            "generators": ["mnist-vae", "mnist-gan", "mnist-diffusion", "fashion-mnist-vae"],
            "n_generated": 20,
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "recall_k": 100,
            "ks": [30, 50, 100],
            "distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
            "tracin_generators": ["mnist-vae"],
            "embedding_generator": "mnist-vae",
            "embedding_encoders": [["pixels", {}], ["efficientnet-lite0", {"resolution": 32}]],
            "size_generators": ["mnist-gan"],
            "pool": 60,
            "size_class": 0,
            "sizes": [1, 5],
            "repeats": 3,
        },
        "ablation": {
            "n_train": 2000,
            "n_generated": 40,
            "encoders": [["pixels", {}], ["efficientnet-lite0", {"resolution": 32}]],
            "rerank_encoder": ["efficientnet-lite0", {"resolution": 32}],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 32}]],
            "temperatures": [1.0, "auto", 0.1],
        },
        "counterfactual": {
            # Seconds: 4 subsets of 100 digits, one epoch of a small VAE.
            "dataset": "mnist", "n_train": 200, "seed": 0,
            "fraction": 0.5, "n_subsets": 4, "subset_seed": 0, "train_seeds": [0],
            "vae": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 1e-3, "latent_dim": 8, "hidden": 32,
                    "beta": _VAE_BETA["mnist"], "likelihood": _VAE_LIKELIHOOD["mnist"], "full_keep_every": 3},
            "n_generated": 8, "generated_seed": 1, "loss_draws": 4, "loss_seed": 0, "n_boot": 200,
            "encoder": ["efficientnet-lite0", {"resolution": 32}], "k": 20, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}]], "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 20,
            "tracin": {"draws": 2, "snapshots": 1, "train_subset": None, "chunk_size": 64},
            "trak": {"models": 1, "projection_dim": 64, "ridge": 1e-2, "draws": 2, "seed": 0, "chunk_size": 64},
            "removal": {"n_samples": 2, "ks": [5, 20], "methods": ["GMValuator (none)", "VAE-TracIn", "TRAK"]},
        },
        "counterfactual_diffusion": {
            # Seconds: 4 subsets of 100 digits, one epoch of the smallest UNet.
            "dataset": "mnist", "n_train": 200, "seed": 0,
            "fraction": 0.5, "n_subsets": 4, "subset_seed": 0, "train_seeds": [0],
            "diffusion": {"epochs": 1, "batch_size": 32, "lr": 2e-3, "block_out_channels": [8, 16, 16],
                          "attention": [False, False, False], "layers_per_block": 1, "norm_groups": 8,
                          "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "ema_decay": 0.9,
                          "p_uncond": 0.1, "sampling_steps": 4, "guidance_scale": 2.0},
            "n_generated": 8, "generated_seed": 1, "loss_timesteps": 2, "loss_draws": 1, "loss_seed": 0,
            "n_boot": 200,
            "encoder": ["efficientnet-lite0", {"resolution": 32}], "k": 20, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}]], "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 20,
            "trak": {"models": 1, "projection_dim": 64, "ridge": 1e-2, "timesteps": 2, "draws": 1, "seed": 0,
                     "chunk_size": 32},
            "removal": {"n_samples": 1, "ks": [5], "methods": ["GMValuator (none)", "TRAK"]},
        },
        "models": {
            "seed": 0,
            "train_images": 512,
            "test_images": 256,
            "quality_samples": 64,
            "sample_batch": 64,
            "cifar10_stand_in": "fashion-mnist",
            "half_class": {"label": 0, "epochs": {"gan": 2, "diffusion": 2}},
            "noisy": {"n": 16, "std": 0.5},
            "checkpoint_seconds": 60.0,
            "workers": 2,   # the notebook tests then cover the worker pool
            "classifier": {"epochs": 1, "batch_size": 64, "lr": 3e-3, "width": 8},
            "vae": {"epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "keep_every": 4,
                    "latent_dim": 32, "likelihood": _VAE_LIKELIHOOD, "beta": _VAE_BETA},
            "gan": {"epochs": 1, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.9, "precision": "auto"},
            "diffusion": {"epochs": 1, "batch_size": 64, "lr": 1e-3, "block_out_channels": [8, 16, 16],
                          "attention": [False, False, False], "layers_per_block": 1, "norm_groups": 8,
                          "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "ema_decay": 0.9,
                          "p_uncond": 0.1, "sampling_steps": 4, "guidance_scale": 2.0,
                          "sampling_precision": "auto"},
        },
    },
    "default": {
        "baselines": {
            # Measured ~37 per-sample gradients (16 draws, dot products included) per CPU-second,
            # so 3 snapshots x (3,000 training + 100 query) gradients take ~250 CPU-seconds: under
            # 5 minutes on one core. Snapshots matter more than the subset: on 300 images x 20
            # samples, scores from 3 of the 5 snapshots have Spearman 0.91 with all 5, the last
            # alone 0.59. Exact gradients: with 100 queries the dot products cost less than a projection.
            "vae_tracin": {"draws": 16, "loss": "elbo", "projection_dim": None, "snapshots": 3,
                           "train_subset": 3000, "seed": 0, "chunk_size": 128},
            "if4gan": {"steps": 80, "lr": 1e-3, "eval_latents": 1000, "eval_seed": 0, "metric": "log-is"},
        },
        "c2": {
            "generators": ["mnist-gan", "mnist-diffusion"],
            "n_generated": 100,
            "encoder": ["efficientnet-lite0", {"resolution": 64}],
            "recall_k": 200,
            "ks": [5, 10, 15],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 32}]],
            "grid_rows": 6,
        },
        "c3": {
            "generator": "noisy-mnist-gan",
            "n_generated": 10000,
            "poor": {"n": 1000, "noise_std": 0.5},
            "encoder": ["efficientnet-lite0", {"resolution": 32}],
            "recall_k": 100,
            "k": 30,
            "distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
            "qualities": [["none", {}], ["realism", {}], ["niqe", {}], ["brisque", {}]],
            "grid_rows": 3,
        },
        "c4": {
            "generators": ["mnist-vae", "fashion-mnist-vae"],
            "n_generated": 100,
            "encoder": ["efficientnet-lite0", {"resolution": 64}],
            "recall_k": 200,
            "k": 30,
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 32}]],
            "qualities": [["realism", {}], ["niqe", {}], ["brisque", {}]],
            "throughput_images": 2000,
            "tracin_probe": 500,   # of the 3,000 C1 images
            "scaling_encoder": ["efficientnet-lite0", {"resolution": 32}],
            "sizes": [1000, 3000, 10000, 30000],
            "noisy_distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
            "pq_configs": [{"index": "pq", "m": 16, "nbits": 8}, {"index": "pq", "m": 64, "nbits": 8},
                           {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64},
                           {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64, "refine": 4}, {"index": "hnsw"}],
            "recall_ks": [100, 200, 400, 700],
        },
        "motivation": {
            "generators": ["motivation-gan", "motivation-diffusion"],
            "n_generated": 500,
            "encoder": ["efficientnet-lite0", {"resolution": 64}],
            "k": 30,
            "tsne_points": 500,
            "perplexity": 30.0,
        },
        "c1": {
            "generators": ["mnist-vae", "mnist-gan", "mnist-diffusion", "fashion-mnist-vae", "fashion-mnist-gan",
                           "fashion-mnist-diffusion"],
            "n_generated": 100,
            "encoder": ["efficientnet-lite0", {"resolution": 64}],
            "recall_k": 200,
            "ks": [30, 50, 100],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 32}]],
            "tracin_generators": ["mnist-vae"],
            "embedding_generator": "mnist-vae",
            "embedding_encoders": [["pixels", {}], ["pca", {"dim": 64}], ["efficientnet-lite0", {"resolution": 32}],
                                   ["efficientnet-lite0", {"resolution": 64}]],
            "size_generators": ["mnist-gan", "mnist-diffusion", "fashion-mnist-gan", "fashion-mnist-diffusion"],
            "pool": 100,
            "size_class": 0,
            "sizes": [1, 10, 30, 50],
            "repeats": 10,
        },
        "ablation": {
            "n_train": 30000,   # the generators' training set (models.train_images): its embeddings are cached
            "n_generated": 1000,
            "encoders": [["pixels", {}], ["pca", {"dim": 64}], ["efficientnet-lite0", {"resolution": 32}],
                         ["efficientnet-lite0", {"resolution": 64}]],
            "rerank_encoder": ["efficientnet-lite0", {"resolution": 64}],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 32}]],
            "temperatures": [1.0, "auto", 0.1, 0.02],
        },
        "counterfactual": {
            # Measured on 2 quiet CPU cores: one subset model (2,500 digits, 6 epochs, batch 64) takes
            # 6-7 s in fp32 (bf16 channels-last is ~1.3x faster per step), the full model (5,000 digits)
            # 12 s; two workers train 32 subsets in 117 s. With one training seed, one TRAK model and
            # the removal lists below (10 retrainings here, 4 in the diffusion study), all of notebook 09
            # took 987 s on a fresh clone; with 14 and 6 removal retrainings it took 921-1,098 s (three
            # days of this shared VM; 21 minutes without workers), the 14 retrainings 114-125 s, now 84 s.
            # Earlier, with 2 seeds, 2 TRAK models and 42 removal retrainings, this part alone took
            # ~18 minutes. The ridge is fixed a priori: on a two-seed run TRAK's LDS was
            # -0.03 at 1e-2 and 0.15 at >= 100 (where it becomes a projected-gradient dot product),
            # but picking it that way would tune on the evaluation set, as D-TRAK does.
            "dataset": "mnist", "n_train": 5000, "seed": 0,
            "fraction": 0.5, "n_subsets": 32, "subset_seed": 0, "train_seeds": [0], "workers": "auto",
            "vae": {"epochs": 6, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "latent_dim": 32, "hidden": 256,
                    "beta": _VAE_BETA["mnist"], "likelihood": _VAE_LIKELIHOOD["mnist"], "full_keep_every": 156,
                    "precision": "auto"},
            "n_generated": 100, "generated_seed": 1, "loss_draws": 32, "loss_seed": 0, "n_boot": 1000,
            "encoder": ["efficientnet-lite0", {"resolution": 32}], "k": 100, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
            "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 100,
            "tracin": {"draws": 4, "snapshots": 3, "train_subset": None, "chunk_size": 128},
            "trak": {"models": 1, "projection_dim": 1024, "ridge": 1e-2, "draws": 4, "seed": 0, "chunk_size": 128},
            # One method per family, as in the paper profile (the LDS table compares every
            # GMValuator variant; on two samples their removal effects did not differ: 0.60, 0.74 and
            # -0.25 for none, l2 and effnet-features, against 2.96 for TRAK and -2.42 for random):
            # 4 methods x 2 samples x 1 k = 8 retrainings plus 2 random.
            "removal": {"n_samples": 2, "ks": [100],
                        "methods": ["GMValuator (none)", "pixel top-k", "VAE-TracIn", "TRAK"]},
        },
        "counterfactual_diffusion": {
            # Measured on 2 quiet CPU cores: one subset model (500 digits, 10 epochs of batch 32 =
            # 150 steps of an (8, 16, 16) UNet) takes 16 s (29-31 CPU-s), the full model (1,000
            # digits) 28 s. 32 subsets x 1 seed = 517 s (305 s on two workers), TRAK (1,100 gradients x
            # 10 timesteps) 36 s, removal 1 x 1 x (3 methods + random) = 4 retrainings 99 s (6 took 134-150 s). A
            # second training seed would add ~9 minutes, so default uses one (no seed agreement).
            # The full model (310 steps) draws noisy but readable digits: the zoo's MNIST classifier
            # puts 70% of 100 samples in the class they were asked for.
            "dataset": "mnist", "n_train": 1000, "seed": 0,
            "fraction": 0.5, "n_subsets": 32, "subset_seed": 0, "train_seeds": [0], "workers": "auto",
            "diffusion": {"epochs": 10, "batch_size": 32, "lr": 2e-3, "block_out_channels": [8, 16, 16],
                          "attention": [False, False, False], "layers_per_block": 1, "norm_groups": 8,
                          "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "ema_decay": 0.995,
                          "p_uncond": 0.1, "sampling_steps": 25, "guidance_scale": 2.0},
            "n_generated": 100, "generated_seed": 1, "loss_timesteps": 10, "loss_draws": 2, "loss_seed": 0,
            "n_boot": 1000,
            "encoder": ["efficientnet-lite0", {"resolution": 32}], "k": 100, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
            "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 100,
            "trak": {"models": 1, "projection_dim": 1024, "ridge": 1e-2, "timesteps": 10, "draws": 1, "seed": 0,
                     "chunk_size": 32},
            # One method per family, as in the paper profile: 3 retrainings plus 1 random.
            "removal": {"n_samples": 1, "ks": [100], "methods": ["GMValuator (none)", "pixel top-k", "TRAK"]},
        },
        "models": {
            "seed": 0,
            "train_images": 30000,
            "test_images": 10000,
            "quality_samples": 500,
            "sample_batch": 500,
            "cifar10_stand_in": "fashion-mnist",
            # diffusion: the last epoch of the scored curve that passes the gate
            # (figures/training/motivation-diffusion_curve.csv, `python -m gmval.models.curve`).
            # gan: the last epoch of its scored curve (figures/training/motivation-gan_curve.csv), the
            # lowest FD of the run. Without DiffAugment its discriminator memorises the half class and
            # the generator never draws a T-shirt; with it the curve passes the gate long before its end.
            "half_class": {"label": 0, "epochs": {"gan": 300, "diffusion": 90},
                           "overrides": {"gan": {"augment": "translation,cutout"}}},
            "noisy": {"n": 100, "std": 0.5},
            "checkpoint_seconds": 60.0,
            # Two one-thread trainings side by side beat one two-thread training after the other
            # on 2 CPU cores: 1.6x for the GAN (ms per bf16 step: 165 with two threads; 206 in each
            # of two processes), 1.2x for the diffusion UNet.
            "workers": "auto",
            "classifier": {"epochs": 3, "batch_size": 128, "lr": 3e-3, "width": 16, "precision": "fp32"},
            # beta and length chosen on the measured curves of figures/training/vae_recipe_sweep.csv.
            "vae": {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "keep_every": 936,
                    "precision": "fp32", "latent_dim": 32, "likelihood": _VAE_LIKELIHOOD,
                    "beta": {**_VAE_BETA, "mnist": 2.0, "fashion-mnist": 0.5}},
            # Length chosen on figures/training/*-gan_curve.csv (FD still falling slowly at the end).
            "gan": {"epochs": 12, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.999, "precision": "fp32"},
            # Length and guidance chosen on figures/training/diffusion_sampling_sweep.csv: guidance trades
            # FD for class accuracy, and the gate needs both.
            "diffusion": {"epochs": 4, "batch_size": 64, "lr": 1e-3, "block_out_channels": [16, 32, 32],
                          "attention": [False, False, True], "layers_per_block": 1, "norm_groups": 8,
                          "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "ema_decay": 0.995,
                          "p_uncond": 0.1, "sampling_steps": 25,
                          "guidance_scale": {"mnist": 1.25, "fashion-mnist": 1.5, "cifar10": 2.0},
                          "sampling_precision": "fp32"},
        },
    },
    "paper": {
        "baselines": {
            "vae_tracin": {"draws": 16, "loss": "elbo", "projection_dim": None, "snapshots": None,
                           "train_subset": None, "seed": 0, "chunk_size": 512},
            "if4gan": {"steps": None, "lr": 1e-3, "eval_latents": 10000, "eval_seed": 0, "metric": "log-is"},
        },
        "c2": {
            "generators": ["mnist-gan", "mnist-diffusion"],
            "n_generated": 100,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "recall_k": 200,
            "ks": [5, 10, 15],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 64}],
                          ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "grid_rows": 6,
        },
        "c3": {
            "generator": "noisy-mnist-gan",
            "n_generated": 10000,
            "poor": {"n": 1000, "noise_std": 0.5},
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "recall_k": 100,
            "k": 30,
            "distances": [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "qualities": [["none", {}], ["realism", {}], ["niqe", {}], ["maniqa", {}]],
            "grid_rows": 3,
        },
        "c4": {
            "generators": ["mnist-vae", "cifar10-vae"],
            "n_generated": 100,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "recall_k": 200,
            "k": 30,
            "distances": [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "qualities": [["realism", {}], ["maniqa", {}]],
            "throughput_images": 10000,
            "tracin_probe": None,
            "scaling_encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "sizes": [1000, 3000, 10000, 30000, 60000],
            "noisy_distances": [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "pq_configs": [{"index": "pq", "m": 16, "nbits": 8}, {"index": "pq", "m": 64, "nbits": 8},
                           {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64},
                           {"index": "ivfpq", "m": 64, "nbits": 8, "nprobe": 64, "refine": 4}, {"index": "hnsw"}],
            "recall_ks": [100, 200, 400, 700],
        },
        "motivation": {
            "generators": ["motivation-gan", "motivation-diffusion"],
            "n_generated": 1000,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "k": 30,
            "tsne_points": 1000,
            "perplexity": 30.0,
        },
        "c1": {
            "generators": ["mnist-vae", "mnist-gan", "mnist-diffusion", "fashion-mnist-vae", "fashion-mnist-gan",
                           "fashion-mnist-diffusion"],
            "n_generated": 100,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "recall_k": 200,
            "ks": [30, 50, 100],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 64}],
                          ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "tracin_generators": ["mnist-vae", "cifar10-vae"],
            "embedding_generator": "mnist-vae",
            "embedding_encoders": [["pixels", {}], ["efficientnet-lite0", {"resolution": 64}],
                                   ["clip", {"model": "ViT-B-32", "pretrained": "openai"}]],
            "size_generators": ["mnist-gan", "mnist-diffusion", "fashion-mnist-gan", "fashion-mnist-diffusion"],
            "pool": 1000,
            "size_class": 0,
            "sizes": [1, 10, 30, 50],
            "repeats": 10,
        },
        "ablation": {
            "n_train": 60000,
            "n_generated": 1000,
            "encoders": [["pixels", {}], ["pca", {"dim": 64}], ["efficientnet-lite0", {"resolution": 64}],
                         ["efficientnet-lite0", {"resolution": 224}],
                         ["clip", {"model": "ViT-B-32", "pretrained": "openai"}]],
            "rerank_encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}],
            "distances": [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 64}],
                          ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "temperatures": [1.0, "auto", 0.1, 0.02],
        },
        "counterfactual": {
            # D-TRAK's scale: 64 subsets x 3 seeds of 5,000 images, 60 removal samples (GPU).
            "dataset": "mnist", "n_train": 5000, "seed": 0,
            "fraction": 0.5, "n_subsets": 64, "subset_seed": 0, "train_seeds": [0, 1, 2], "workers": "auto",
            "vae": {"epochs": 50, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "latent_dim": 32, "hidden": 256,
                    "beta": _VAE_BETA["mnist"], "likelihood": _VAE_LIKELIHOOD["mnist"], "full_keep_every": 390},
            "n_generated": 1000, "generated_seed": 1, "loss_draws": 64, "loss_seed": 0, "n_boot": 1000,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}], "k": 100, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 100,
            "tracin": {"draws": 16, "snapshots": None, "train_subset": None, "chunk_size": 512},
            "trak": {"models": 3, "projection_dim": 8192, "ridge": 1e-2, "draws": 16, "seed": 0, "chunk_size": 512},
            "removal": {"n_samples": 60, "ks": [10, 50, 100], "methods": ["GMValuator (none)", "pixel top-k",
                                                                          "VAE-TracIn", "TRAK"]},
        },
        "counterfactual_diffusion": {
            # D-TRAK's scale (GPU): 64 subsets x 3 seeds of 5,000 digits, a (32, 64, 64) UNet with
            # attention, 100 timesteps for the measured loss and for TRAK, 60 removal samples.
            "dataset": "mnist", "n_train": 5000, "seed": 0,
            "fraction": 0.5, "n_subsets": 64, "subset_seed": 0, "train_seeds": [0, 1, 2], "workers": "auto",
            "diffusion": {"epochs": 100, "batch_size": 128, "lr": 1e-3, "block_out_channels": [32, 64, 64],
                          "attention": [False, False, True], "layers_per_block": 2, "norm_groups": 8,
                          "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", "ema_decay": 0.999,
                          "p_uncond": 0.1, "sampling_steps": 50, "guidance_scale": 2.0},
            "n_generated": 1000, "generated_seed": 1, "loss_timesteps": 100, "loss_draws": 3, "loss_seed": 0,
            "n_boot": 1000,
            "encoder": ["clip", {"model": "ViT-B-32", "pretrained": "openai"}], "k": 100, "temperature": "auto",
            "distances": [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]],
            "qualities": [["none", {}], ["realism", {}]],
            "pixel_k": 100,
            "trak": {"models": 3, "projection_dim": 8192, "ridge": 1e-2, "timesteps": 100, "draws": 1, "seed": 0,
                     "chunk_size": 64},
            "removal": {"n_samples": 60, "ks": [10, 50, 100], "methods": ["GMValuator (none)", "pixel top-k", "TRAK"]},
        },
        "models": {
            "seed": 0,
            "train_images": None,
            "test_images": None,
            "quality_samples": 10000,
            "sample_batch": 1000,
            "cifar10_stand_in": "cifar10",
            "half_class": {"label": 0, "epochs": {"gan": 500, "diffusion": 500}},
            "noisy": {"n": 100, "std": 0.5},
            "checkpoint_seconds": 600.0,
            "workers": "auto",
            "classifier": {"epochs": 20, "batch_size": 128, "lr": 1e-3, "width": 64},
            # VAE-TracIn's recipe: plain SGD, batch 64, ~1.5M iterations, a snapshot every 50k.
            "vae": {"epochs": 1601, "batch_size": 64, "optimizer": "sgd", "lr": 1e-4, "keep_every": 50000,
                    "latent_dim": 32, "likelihood": _VAE_LIKELIHOOD, "beta": _VAE_BETA},
            "gan": {"epochs": 50, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.999},
            # D-TRAK's CIFAR-10 UNet (DDPM's layout): attention at 16x16, 2 blocks per level.
            "diffusion": {"epochs": 200, "batch_size": 128, "lr": 1e-4, "block_out_channels": [128, 256, 256, 256],
                          "attention": [False, True, False, False], "layers_per_block": 2, "norm_groups": 32,
                          "beta_schedule": "linear", "prediction_type": "epsilon", "ema_decay": 0.9999,
                          "p_uncond": 0.1, "sampling_steps": 100, "guidance_scale": 2.0},
        },
    },
}


def get_profile(name: str) -> dict[str, Any]:
    """A deep copy of profile ``name`` (so callers may edit it freely).

    Raises:
        KeyError: for an unknown profile; the message lists the known ones.
    """
    try:
        return copy.deepcopy(PROFILES[name])
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}") from None


#: A profile name (a key of :data:`PROFILES`) or a profile dict of the same shape.
Profile = str | Mapping[str, Any]


def profile_settings(profile: Profile) -> Mapping[str, Any]:
    """The settings of ``profile``: :func:`get_profile` of a name, or a profile dict as given."""
    return get_profile(profile) if isinstance(profile, str) else profile
