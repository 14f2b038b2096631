"""MANIQA (Yang et al. 2022) no-reference quality through pyiqa: the paper's quality model.

Raw score: pyiqa's MANIQA output, the sigmoid-weighted mean of per-patch scores from a
ReLU head, averaged over 224x224 crops. It is >= 0 and, for the released checkpoints,
almost always <= 1 (pyiqa lists its range as "~0, ~1"); :meth:`MANIQAQuality.normalise`
clips it to [0, 1] and changes nothing else, so q is MANIQA's own score.

Weights: the full MANIQA checkpoint of the chosen variant (``ckpt_koniq10k.pt``,
``MANIQA_PIPAL-ae6d356b.pth`` or ``ckpt_kadid10k.pt`` from the Hugging Face repo
``chaofengc/IQA-PyTorch-Weights``), read from ``cache_dir`` (default: pyiqa's own cache,
``$TORCH_HOME/hub/pyiqa``) and downloaded there if missing, or from
``pretrained_model_path``. The checkpoint holds every weight, ViT backbone included, and is
loaded strictly, so the ImageNet ViT-B/8 weights that pyiqa's constructor asks timm for
would be overwritten: gmval skips that download. A hub checkpoint, downloaded or cached,
must have the SHA-256 pinned in :data:`CHECKPOINT_SHA256` (or passed as ``sha256``); every
checkpoint is read with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmval import hub
from gmval.images import to_float, to_rgb
from gmval.quality.base import QualityModel

#: Full SHA-256 of pyiqa's hub checkpoints. PIPAL: the Hugging Face LFS record of
#: chaofengc/IQA-PyTorch-Weights; KonIQ: the authors' release (IIGROUP/MANIQA, tag Koniq10k),
#: of which the hub file is a copy; KADID: published nowhere gmval could check, so it must
#: be passed as ``sha256``.
CHECKPOINT_SHA256: dict[str, str | None] = {
    "ckpt_koniq10k.pt": "a207f8ab57322e6be38ff5c8d019301dc032b454bef21c3c9f9dbf7974eebff6",
    "MANIQA_PIPAL-ae6d356b.pth": "ae6d356bcd583ae3c1ca81d84817cf96d662073896c7e40fceddb305ddc2f155",
    "ckpt_kadid10k.pt": None,
}

#: gmval variant name -> pyiqa metric name.
VARIANTS = {"maniqa": "maniqa", "maniqa-koniq": "maniqa", "maniqa-pipal": "maniqa-pipal",
            "maniqa-kadid": "maniqa-kadid"}


def _timm_without_pretrained() -> contextlib.AbstractContextManager[None]:
    """Make ``timm.create_model`` build randomly initialised models for the duration.

    pyiqa's MANIQA constructor hard-codes ``timm.create_model('vit_base_patch8_224',
    pretrained=True)``; the strict load of the full checkpoint that follows replaces all of
    those weights, so downloading them (330 MB, impossible offline) is pure waste.
    """
    import timm

    return hub.forced_keyword(timm, "create_model", "pretrained", False)


def checkpoint_url(metric: str) -> str:
    """Hub URL of the checkpoint pyiqa loads for pyiqa metric ``metric``."""
    from pyiqa.archs.maniqa_arch import default_model_urls
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    return default_model_urls[DEFAULT_CONFIGS[metric]["metric_opts"]["train_dataset"]]


def crops_coincide(height: int, width: int, crop: int, crop_num: int) -> bool:
    """Whether pyiqa's ``uniform_crop`` returns ``crop_num`` copies of the same crop for this image size.

    It first upsamples images whose short side is <= ``crop`` to a short side of ``crop + 1``,
    then steps by ``(side - crop) // floor(sqrt(crop_num))``; a zero step on both axes means
    every crop is the top-left one. Same arithmetic as pyiqa (float64 scale, floored sizes).
    """
    if min(height, width) <= crop:
        scale = (crop + 1) / min(height, width)
        height, width = math.floor(height * scale), math.floor(width * scale)
    steps = int(np.sqrt(crop_num))
    return (height - crop) // steps == 0 and (width - crop) // steps == 0


class MANIQAQuality(QualityModel):
    """MANIQA quality of each image, q = clip(score, 0, 1).

    Args:
        variant: ``"maniqa"`` (= ``"maniqa-koniq"``, trained on KonIQ-10k; pyiqa's default),
            ``"maniqa-pipal"`` or ``"maniqa-kadid"``.
        pretrained_model_path: a local checkpoint, either pyiqa's hub file (a state dict) or
            pyiqa's training format (``{"params": state_dict}``); overrides the cache.
        cache_dir: folder of the hub checkpoints; ``None`` uses pyiqa's
            ``$TORCH_HOME/hub/pyiqa``.
        sha256: the hub checkpoint's full SHA-256, for a variant gmval pins none for (or a
            re-released file); ignored with ``pretrained_model_path``.
        batch_size: images per forward pass; each image becomes up to 20 ViT-B/8 crops.
        **kw: :class:`~gmval.component.Component` arguments (device).

    Raises:
        WeightsUnavailableError: the checkpoint is neither cached nor downloadable.
        WeightsIntegrityError: the hub checkpoint does not have its pinned SHA-256 (or none is
            pinned and ``sha256`` is not given).
    """

    name = "maniqa"

    def __init__(self, variant: str = "maniqa", pretrained_model_path: str | Path | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 8, sha256: str | None = None,
                 **kw: Any) -> None:
        super().__init__(batch_size=batch_size, **kw)
        import pyiqa
        from pyiqa.archs.arch_util import clean_state_dict

        if variant not in VARIANTS:
            raise ValueError(f"maniqa: unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
        self.variant, self.metric_name = variant, VARIANTS[variant]
        if pretrained_model_path is not None:
            path = Path(pretrained_model_path)
            if not path.is_file():
                raise FileNotFoundError(f"maniqa: no checkpoint at {path}")
        else:
            url = checkpoint_url(self.metric_name)
            name = url.rsplit("/", 1)[-1]
            pin = hub.require_pin(f"the MANIQA checkpoint {name} ({url})", sha256 or CHECKPOINT_SHA256.get(name),
                                  "sha256=<hex> (--quality-arg sha256=<hex>)")
            folder = Path(cache_dir) if cache_dir is not None else hub.cache_root("torch_hub") / "pyiqa"
            path = hub.fetch(url, folder / name, sha256=pin)
        self.checkpoint = path
        # A user-supplied file is identified by content, the hub file by its (versioned) name.
        self.weights_id = hub.sha256_file(path) if pretrained_model_path is not None else path.name
        with _timm_without_pretrained(), contextlib.redirect_stdout(io.StringIO()):
            metric = pyiqa.create_metric(self.metric_name, device=self.device, pretrained=False)
        state = hub.load_checkpoint(path)
        state = state.get("params", state)  # pyiqa's training format nests the weights
        metric.net.load_state_dict(clean_state_dict(state), strict=True)
        self.metric = metric.eval().requires_grad_(False)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "variant": self.metric_name, "weights": self.weights_id,
                "crops": int(self.metric.net.test_sample)}

    @torch.inference_mode()
    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        net = self.metric.net
        x = to_rgb(to_float(images.to(self.device)))
        crop_num = net.test_sample
        if crops_coincide(x.shape[-2], x.shape[-1], net.img_size, crop_num):
            # Small images (MNIST, CIFAR) yield crop_num identical crops, and the score is a
            # weighted mean over all their patches: one crop gives the same number, 20x cheaper.
            net.test_sample = 1
        try:
            scores = self.metric(x)
        finally:
            net.test_sample = crop_num
        return scores.reshape(-1).double().cpu().numpy()

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """Clip to [0, 1] (NaN stays NaN); the score is already on that scale."""
        return np.clip(np.asarray(raw, dtype=np.float64), 0.0, 1.0)
