"""The ``paper`` profile: the paper's full scale (a GPU); what differs from ``default``.

Training precision stays fp32, as it has always been here: ``default``'s ``"auto"`` for the
retrained VAEs is a CPU-speed choice, and on a GPU it would train in bf16.
"""

from __future__ import annotations

from typing import Any

from gmval.profiles.schema import VAE_BETA

_CLIP = ["clip", {"model": "ViT-B-32", "pretrained": "openai"}]
_GPU_DISTANCES = [["none", {}], ["l2", {}], ["lpips", {"net": "alex"}], ["dreamsim", {}]]
_EVERY_DISTANCE = [["none", {}], ["l2", {}], ["ssim", {}], ["effnet-features", {"resolution": 64}],
                   ["lpips", {"net": "alex"}], ["dreamsim", {}]]
_D_TRAK_REMOVAL = {"n_samples": 60, "ks": [10, 50, 100]}

CHANGES: dict[str, Any] = {
    "baselines": {
        "vae_tracin": {"snapshots": None, "train_subset": None, "chunk_size": 512},
        "if4gan": {"steps": None, "eval_latents": 10000},
    },
    "c1": {
        "encoder": _CLIP, "distances": _EVERY_DISTANCE, "tracin_generators": ["mnist-vae", "cifar10-vae"],
        "embedding_encoders": [["pixels", {}], ["efficientnet-lite0", {"resolution": 64}], _CLIP],
        "pool": 1000,
    },
    "c2": {"encoder": _CLIP, "distances": _EVERY_DISTANCE},
    "c3": {"encoder": _CLIP, "distances": _GPU_DISTANCES,
           "qualities": [["none", {}], ["realism", {}], ["niqe", {}], ["maniqa", {}]]},
    "c4": {
        "generators": ["mnist-vae", "cifar10-vae"], "encoder": _CLIP, "distances": _GPU_DISTANCES,
        "qualities": [["realism", {}], ["maniqa", {}]], "throughput_images": 10000, "tracin_probe": None,
        "scaling_encoder": _CLIP, "sizes": [1000, 3000, 10000, 30000, 60000], "noisy_distances": _GPU_DISTANCES,
    },
    "motivation": {"n_generated": 1000, "encoder": _CLIP, "tsne_points": 1000},
    "ablation": {
        "n_train": 60000,
        "encoders": [["pixels", {}], ["pca", {"dim": 64}], ["efficientnet-lite0", {"resolution": 64}],
                     ["efficientnet-lite0", {"resolution": 224}], _CLIP],
        "rerank_encoder": _CLIP, "distances": _EVERY_DISTANCE,
    },
    "counterfactual": {
        # D-TRAK's scale: 64 subsets x 3 seeds of 5,000 images, 60 removal samples (GPU).
        "n_subsets": 64, "train_seeds": [0, 1, 2],
        "vae": {"epochs": 50, "precision": "fp32", "full_keep_every": 390},
        "n_generated": 1000, "loss_draws": 64, "encoder": _CLIP, "distances": _GPU_DISTANCES,
        "tracin": {"draws": 16, "snapshots": None, "chunk_size": 512},
        "trak": {"models": 3, "projection_dim": 8192, "draws": 16, "chunk_size": 512},
        "removal": _D_TRAK_REMOVAL,
    },
    "counterfactual_diffusion": {
        # D-TRAK's scale (GPU): 64 subsets x 3 seeds of 5,000 digits, a (32, 64, 64) UNet with
        # attention, 100 timesteps for the measured loss and for TRAK, 60 removal samples.
        "n_train": 5000, "n_subsets": 64, "train_seeds": [0, 1, 2],
        "diffusion": {"epochs": 100, "batch_size": 128, "lr": 1e-3, "block_out_channels": [32, 64, 64],
                      "attention": [False, False, True], "layers_per_block": 2, "ema_decay": 0.999,
                      "sampling_steps": 50},
        "n_generated": 1000, "loss_timesteps": 100, "loss_draws": 3, "encoder": _CLIP, "distances": _GPU_DISTANCES,
        "trak": {"models": 3, "projection_dim": 8192, "timesteps": 100, "chunk_size": 64},
        "removal": _D_TRAK_REMOVAL,
    },
    "models": {
        "train_images": None, "test_images": None, "quality_samples": 10000, "sample_batch": 1000,
        "cifar10_stand_in": "cifar10",
        "half_class": {"epochs": {"gan": 500, "diffusion": 500}},
        "checkpoint_seconds": 600.0,
        "classifier": {"epochs": 20, "lr": 1e-3, "width": 64},
        # VAE-TracIn's recipe: plain SGD, batch 64, ~1.5M iterations, a snapshot every 50k.
        "vae": {"epochs": 1601, "optimizer": "sgd", "lr": 1e-4, "keep_every": 50000, "beta": VAE_BETA},
        "gan": {"epochs": 50},
        # D-TRAK's CIFAR-10 UNet (DDPM's layout): attention at 16x16, 2 blocks per level.
        "diffusion": {"epochs": 200, "batch_size": 128, "lr": 1e-4, "block_out_channels": [128, 256, 256, 256],
                      "attention": [False, True, False, False], "layers_per_block": 2, "norm_groups": 32,
                      "beta_schedule": "linear", "prediction_type": "epsilon", "ema_decay": 0.9999,
                      "sampling_steps": 100, "guidance_scale": 2.0},
    },
}
