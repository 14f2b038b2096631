"""CLIP image embeddings (open_clip): the paper's recall encoder.

Weights are resolved by open_clip itself: a pretrained *tag* (``"openai"``,
``"laion2b_s34b_b79k"``, ...) is fetched from the Hugging Face hub into ``cache_dir``
(default: the hub cache, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub``) and reused from there,
also offline; a *file path* is loaded as is. A tag's file, downloaded or cached, must have
the SHA-256 pinned in :data:`WEIGHTS_SHA256` or passed as ``sha256`` before open_clip reads
it (open_clip reads safetensors, or ``torch.load`` with ``weights_only=True``).

Tags trained with QuickGELU (all ``"openai"`` weights) get it forced here: open_clip 3.x
only warns when the architecture name lacks it and would run the OpenAI weights with the
wrong activation. A local file of OpenAI weights needs the name ``"ViT-B-32-quickgelu"``.

Preprocessing is open_clip's validation transform (shortest side to the model's size,
bicubic; centre crop; the model's mean/std), re-implemented on batched tensors on the
model's device instead of per image through PIL. Antialiased bicubic resampling in torch
uses PIL's kernel; the remaining difference is PIL's rounding to uint8 between its two
passes (at most one grey level on natural images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gmval import hub
from gmval.encoders.base import Encoder, l2_normalise
from gmval.images import to_float, to_rgb

_MODES = {"bicubic", "bilinear"}

#: (architecture, tag) -> full SHA-256 of the file open_clip fetches for it. The Hugging Face
#: hub publishes these per file, but none could be checked offline when this was written, so
#: a tag needs ``sha256`` until its digest is pinned here.
WEIGHTS_SHA256: dict[tuple[str, str], str] = {}


def clip_preprocess(images: torch.Tensor, size: tuple[int, int], mean: torch.Tensor, std: torch.Tensor,
                    interpolation: str = "bicubic", resize_mode: str = "shortest") -> torch.Tensor:
    """open_clip's validation transform on a uint8 batch (B, C, H, W) -> normalised float (B, 3, *size).

    Args:
        images: uint8 images, grey or RGB.
        size: (height, width) the model takes.
        mean: per-channel mean, shape (1, 3, 1, 1), on the images' device.
        std: per-channel std, same shape.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        resize_mode: ``"shortest"`` (scale the short side, centre-crop; square ``size`` only) or
            ``"squash"`` (resize to ``size``).
    """
    if interpolation not in _MODES:
        raise ValueError(f"unsupported CLIP interpolation {interpolation!r}; expected one of {sorted(_MODES)}")
    x = to_rgb(to_float(images))
    th, tw = size
    h, w = x.shape[-2:]
    if resize_mode == "squash":
        out_hw = (th, tw)
    elif resize_mode == "shortest" and th == tw:
        # torchvision's Resize(int): the short side becomes the target, the long side is truncated.
        out_hw = (th, int(w * th / h)) if h <= w else (int(h * tw / w), tw)
    else:
        raise ValueError(f"unsupported CLIP resize: {resize_mode!r} to {size}; "
                         "expected 'shortest' (square) or 'squash'")
    if out_hw != (h, w):
        # PIL clips to [0, 255]; bicubic overshoots, so clamp to match it.
        x = F.interpolate(x, size=out_hw, mode=interpolation, align_corners=False, antialias=True).clamp_(0.0, 1.0)
    top = round((x.shape[-2] - th) / 2.0)
    left = round((x.shape[-1] - tw) / 2.0)
    x = x[..., top:top + th, left:left + tw]
    return (x - mean) / std


class CLIPEncoder(Encoder):
    """L2-normalised open_clip image embeddings.

    Args:
        model: open_clip architecture name (``open_clip.list_models()``).
        pretrained: a pretrained tag of that architecture (``open_clip.list_pretrained()``)
            or the path of a checkpoint file.
        cache_dir: Hugging Face cache folder for tagged weights; ``None`` uses the hub's
            default (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``).
        sha256: full SHA-256 of a tag's weight file, where :data:`WEIGHTS_SHA256` has none.
        **kw: :class:`~gmval.component.Component` arguments (device, batch_size).

    Raises:
        WeightsUnavailableError: the tagged weights are neither cached nor downloadable.
        WeightsIntegrityError: the tag's file does not have its pinned SHA-256, or none is
            pinned and ``sha256`` is not given.
    """

    name = "clip"

    def __init__(self, model: str = "ViT-B-32", pretrained: str = "openai", cache_dir: str | Path | None = None,
                 sha256: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        import open_clip

        self.model_name, self.pretrained = model, str(pretrained)
        is_file = os.path.isfile(self.pretrained)
        # A file's identity is its content: the valuator's cache keys must change with it.
        self.weights_sha256 = hub.sha256_file(self.pretrained) if is_file else None
        cache = str(cache_dir) if cache_dir is not None else None
        tag_cfg = {} if is_file else open_clip.get_pretrained_cfg(model, self.pretrained)
        try:
            if tag_cfg:
                pin = hub.require_pin(f"open_clip weights {model}/{self.pretrained}",
                                      sha256 or WEIGHTS_SHA256.get((model, self.pretrained)),
                                      "sha256=<hex> (--encoder-arg sha256=<hex>)")
                # Resolve (download or find) the tag's file first, so it is checked before open_clip reads it.
                hub.verify(open_clip.pretrained.download_pretrained(tag_cfg, cache_dir=cache), pin)
            with hub.weights_only_loads():
                net, _, _ = open_clip.create_model_and_transforms(
                    model, pretrained=self.pretrained, cache_dir=cache,
                    force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)))
        except (RuntimeError, OSError) as exc:
            if not tag_cfg:  # not a download problem: unknown tag, bad file, ...
                raise
            hf_id = tag_cfg.get("hf_hub", "").rstrip("/")
            where = cache or str(hub.cache_root("hf"))
            raise hub.WeightsUnavailableError(
                f"open_clip weights {model}/{self.pretrained} are not in the Hugging Face cache {where} and could "
                f"not be downloaded. On a machine with internet run `hf download {hf_id}` with "
                f"HF_HUB_CACHE (or cache_dir) pointing at that folder, or pass pretrained=<checkpoint file>."
            ) from exc
        self.net = net.to(self.device).eval().requires_grad_(False)
        cfg = open_clip.get_model_preprocess_cfg(self.net)
        size = cfg["size"]
        self.size: tuple[int, int] = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.interpolation: str = cfg.get("interpolation", "bicubic")
        self.resize_mode: str = cfg.get("resize_mode", "shortest")
        self.mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        # Towers name their output size differently (output_dim, embed_dim, ...); one forward pass is universal.
        with torch.inference_mode():
            self.dim = int(self.net.encode_image(torch.zeros(1, 3, *self.size, device=self.device)).shape[-1])

    def params(self) -> dict[str, Any]:
        out = {**super().params(), "model": self.model_name, "pretrained": self.pretrained,
               "size": list(self.size), "interpolation": self.interpolation, "resize_mode": self.resize_mode}
        if self.weights_sha256 is not None:
            # The path itself is machine-specific; the content hash is what identifies the weights.
            out["pretrained"] = "file"
            out["weights_sha256"] = self.weights_sha256
        return out

    @torch.inference_mode()
    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        x = clip_preprocess(images.to(self.device), self.size, self.mean, self.std,
                            self.interpolation, self.resize_mode)
        return l2_normalise(self.net.encode_image(x)).cpu()
