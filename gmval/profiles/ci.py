"""The ``ci`` profile: seconds per notebook, so that the tests run every one; what differs from ``default``.

The CPU-speed choices of ``default`` that would change ci's numbers on a CPU with bf16 units
(``"auto"`` precision) or its process layout are pinned here to fp32 and one process.
"""

from __future__ import annotations

from typing import Any

from gmval.profiles.schema import VAE_BETA

_EFFNET32 = ["efficientnet-lite0", {"resolution": 32}]
_NONE_L2 = [["none", {}], ["l2", {}]]

CHANGES: dict[str, Any] = {
    "baselines": {
        # Smoke scale: 220 gradients of 4 draws, a few CPU-seconds.
        "vae_tracin": {"draws": 4, "snapshots": 1, "train_subset": 200},
        "if4gan": {"steps": 2, "eval_latents": 64},
    },
    "c1": {
        "generators": ["mnist-vae", "mnist-gan", "mnist-diffusion", "fashion-mnist-vae"],
        "n_generated": 20, "encoder": _EFFNET32, "recall_k": 100,
        "distances": [["none", {}], ["l2", {}], ["effnet-features", {"resolution": 32}]],
        "embedding_encoders": [["pixels", {}], _EFFNET32],
        "size_generators": ["mnist-gan"], "pool": 60, "sizes": [1, 5], "repeats": 3,
    },
    "c2": {"generators": ["mnist-gan"], "n_generated": 20, "encoder": _EFFNET32, "recall_k": 50,
           "distances": _NONE_L2, "grid_rows": 3},
    "c3": {"n_generated": 40, "poor": {"n": 8}, "recall_k": 50, "k": 10, "distances": _NONE_L2,
           "qualities": [["none", {}], ["realism", {}], ["niqe", {}]], "grid_rows": 2},
    "c4": {
        "generators": ["mnist-vae"], "n_generated": 20, "encoder": _EFFNET32, "recall_k": 50,
        "distances": _NONE_L2, "qualities": [["realism", {}]], "throughput_images": 200, "tracin_probe": 50,
        "sizes": [100, 300], "noisy_distances": [["none", {}]],
        "pq_configs": [{"index": "pq", "m": 16, "nbits": 8}, {"index": "hnsw"}], "recall_ks": [50, 100],
    },
    "motivation": {"generators": ["fashion-mnist-gan", "fashion-mnist-diffusion"], "n_generated": 20,
                   "encoder": _EFFNET32, "k": 10, "tsne_points": 40, "perplexity": 10.0},
    "ablation": {"n_train": 2000, "n_generated": 40, "encoders": [["pixels", {}], _EFFNET32],
                 "rerank_encoder": _EFFNET32, "temperatures": [1.0, "auto", 0.1]},
    "counterfactual": {
        # Seconds: 4 subsets of 100 digits, one epoch of a small VAE.
        "n_train": 200, "n_subsets": 4, "workers": 1,
        "vae": {"epochs": 1, "batch_size": 32, "precision": "fp32", "latent_dim": 8, "hidden": 32,
                "full_keep_every": 3},
        "n_generated": 8, "loss_draws": 4, "n_boot": 200, "k": 20, "distances": _NONE_L2, "pixel_k": 20,
        "tracin": {"draws": 2, "snapshots": 1, "chunk_size": 64},
        "trak": {"projection_dim": 64, "draws": 2, "chunk_size": 64},
        "removal": {"ks": [5, 20], "methods": ["GMValuator (none)", "VAE-TracIn", "TRAK"]},
    },
    "counterfactual_diffusion": {
        # Seconds: 4 subsets of 100 digits, one epoch of the smallest UNet.
        "n_train": 200, "n_subsets": 4, "workers": 1,
        "diffusion": {"epochs": 1, "ema_decay": 0.9, "sampling_steps": 4},
        "n_generated": 8, "loss_timesteps": 2, "loss_draws": 1, "n_boot": 200, "k": 20, "distances": _NONE_L2,
        "pixel_k": 20, "trak": {"projection_dim": 64, "timesteps": 2},
        "removal": {"ks": [5], "methods": ["GMValuator (none)", "TRAK"]},
    },
    "models": {
        "train_images": 512, "test_images": 256, "quality_samples": 64, "sample_batch": 64,
        "half_class": {"epochs": {"gan": 2, "diffusion": 2}},
        "noisy": {"n": 16},
        "workers": 2,   # the notebook tests then cover the worker pool
        "classifier": {"epochs": 1, "batch_size": 64, "width": 8},
        "vae": {"epochs": 1, "keep_every": 4, "beta": VAE_BETA},
        "gan": {"epochs": 1, "ema_decay": 0.9, "precision": "auto"},
        "diffusion": {"epochs": 1, "block_out_channels": [8, 16, 16], "attention": [False, False, False],
                      "ema_decay": 0.9, "sampling_steps": 4, "guidance_scale": 2.0, "sampling_precision": "auto"},
    },
}
