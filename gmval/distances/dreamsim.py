"""DreamSim (Fu et al. 2023) through the ``dreamsim`` package's own loader.

DreamSim's distance is ``1 - cos(embed(x), embed(y))`` with ``embed`` the (mean-centred,
unit-norm) output of its fine-tuned ViT(s), so :meth:`DreamSimDistance.features` embeds
each image once and :meth:`~DreamSimDistance.pairwise` is a dot product per pair.

Where the weights live (``cache_dir``, default ``$GMVAL_DATA/models/dreamsim``; never
dreamsim's relative ``./models``):

* every type: the release zip of its type (``dreamsim.config.dreamsim_weights``), unpacked
  into ``cache_dir``: backbone files such as ``open_clip_vitb32_pretrain.pth.tar`` and a
  LoRA adapter folder such as ``open_clip_vitb32_single_lora/``;
* types with a DINO branch (``ensemble``, ``dino_vitb16``; ``dinov2_vitb14``) also call
  ``torch.hub.load`` with ``cache_dir`` as torch.hub's folder, which needs the hub repo
  checkout ``facebookresearch_dino_main/`` (``facebookresearch_dinov2_main/``) and the
  DINO backbone in ``checkpoints/``. Online, dreamsim fetches all of it on first use; to run
  offline, copy a ``cache_dir`` filled that way. ``clip_vitb32`` and ``open_clip_vitb32``
  need only the release zip.
"""

from __future__ import annotations

import contextlib
import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gmval import hub
from gmval.distances.base import Distance
from gmval.images import to_float, to_rgb

#: What each type's release zip unpacks to; mirrors ``dreamsim.model.download_weights`` (0.2.x),
#: which downloads the zip again unless all of these exist.
RELEASE_FILES: dict[str, tuple[str, ...]] = {
    "ensemble": ("dino_vitb16_pretrain.pth", "open_clip_vitb16_pretrain.pth.tar", "clip_vitb16_pretrain.pth.tar",
                 "ensemble_lora"),
    "dino_vitb16": ("dino_vitb16_pretrain.pth", "dino_vitb16_single_lora"),
    "dinov2_vitb14": ("dinov2_vitb14_pretrain.pth", "dinov2_vitb14_single_lora"),
    "open_clip_vitb32": ("open_clip_vitb32_pretrain.pth.tar", "open_clip_vitb32_single_lora"),
    "clip_vitb32": ("clip_vitb32_pretrain.pth.tar", "clip_vitb32_single_lora"),
    "synclr_vitb16": ("synclr_vit_b_16.pth", "synclr_vitb16_single_lora"),
}

_DINO_HUB = (("facebookresearch_dino_main", "torch.hub's checkout of github.com/facebookresearch/dino (main)"),
             ("checkpoints/dino_vitbase16_pretrain.pth",
              "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"))
_DINOV2_HUB = (("facebookresearch_dinov2_main", "torch.hub's checkout of github.com/facebookresearch/dinov2 (main)"),
               ("checkpoints/dinov2_vitb14_pretrain.pth",
                "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"))
#: What the DINO branches fetch through torch.hub into ``cache_dir`` (path in it, source).
HUB_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "ensemble": _DINO_HUB, "dino_vitb16": _DINO_HUB, "dinov2_vitb14": _DINOV2_HUB,
    "open_clip_vitb32": (), "clip_vitb32": (), "synclr_vitb16": (),
}

#: DreamSim's input side (``dreamsim_args['img_size']``).
IMAGE_SIZE = 224


def default_cache_dir() -> Path:
    """``$GMVAL_DATA/models/dreamsim``."""
    return hub.cache_root("models") / "dreamsim"


def ensure_release(dreamsim_type: str, cache_dir: Path) -> None:
    """Make sure everything ``dreamsim()`` reads from ``cache_dir`` is there, fetching the release zip if not.

    The zip is fetched with :func:`gmval.hub.fetch` (timeout, offline switch) rather than by
    dreamsim, whose download has neither. torch.hub's DINO files cannot be fetched apart
    from ``torch.hub.load``; offline, their absence is reported here instead.

    Raises:
        WeightsUnavailableError: files are missing and cannot be downloaded.
    """
    from dreamsim.config import dreamsim_weights

    cache_dir.mkdir(parents=True, exist_ok=True)
    missing_hub = [f"{cache_dir / rel} ({source})" for rel, source in HUB_FILES[dreamsim_type]
                   if not (cache_dir / rel).exists()]
    if missing_hub and hub.offline():
        raise hub.WeightsUnavailableError(
            f"dreamsim {dreamsim_type}: downloads are disabled and torch.hub files are missing: "
            + "; ".join(missing_hub) + ". Run DreamSimDistance once online with the same cache_dir, then copy it.")
    if all((cache_dir / rel).exists() for rel in RELEASE_FILES[dreamsim_type]):
        return
    archive = cache_dir / "pretrained.zip"  # dreamsim's own name, so either downloader reuses the other's
    hub.fetch(dreamsim_weights[dreamsim_type], archive, timeout=60.0)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(cache_dir)
    archive.unlink()
    missing = [rel for rel in RELEASE_FILES[dreamsim_type] if not (cache_dir / rel).exists()]
    if missing:
        raise hub.WeightsUnavailableError(
            f"dreamsim {dreamsim_type}: {dreamsim_weights[dreamsim_type]} did not provide {missing} in {cache_dir}")


def dreamsim_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 batch -> RGB in [0, 1] at 224x224, as dreamsim's preprocess (bicubic, squashed) but batched."""
    x = to_rgb(to_float(images))
    if tuple(x.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        # PIL (dreamsim's path) clips the bicubic overshoot at [0, 255].
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
    return x


class DreamSimDistance(Distance):
    """DreamSim perceptual distance, 1 - cosine of cached per-image embeddings.

    Args:
        dreamsim_type: ``"ensemble"`` (DINO + CLIP + OpenCLIP ViT-B/16, the default and best),
            ``"dino_vitb16"``, ``"dinov2_vitb14"``, ``"clip_vitb32"``, ``"open_clip_vitb32"``
            or ``"synclr_vitb16"``.
        cache_dir: folder of dreamsim's weights and (DINO types) torch.hub files; ``None`` uses
            ``$GMVAL_DATA/models/dreamsim``.
        pretrained: load the DreamSim LoRA weights; ``False`` leaves the adapters at peft's
            no-op initialisation, i.e. the backbones before DreamSim's tuning.
        **kw: :class:`~gmval.component.Component` arguments (device, batch_size).

    Raises:
        WeightsUnavailableError: weights are neither in ``cache_dir`` nor downloadable.
    """

    name = "dreamsim"

    def __init__(self, dreamsim_type: str = "ensemble", cache_dir: str | Path | None = None, pretrained: bool = True,
                 **kw: Any) -> None:
        super().__init__(**kw)
        from dreamsim import dreamsim

        if dreamsim_type not in RELEASE_FILES:
            raise ValueError(f"dreamsim: unknown type {dreamsim_type!r}; expected one of {sorted(RELEASE_FILES)}")
        self.dreamsim_type, self.pretrained = dreamsim_type, pretrained
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        ensure_release(dreamsim_type, self.cache_dir)
        try:
            # dreamsim points torch.hub at cache_dir and never points it back; restore it.
            with hub.torch_hub_dir(self.cache_dir), contextlib.redirect_stdout(io.StringIO()), \
                    warnings.catch_warnings():
                # dreamsim wraps its model in peft twice by design; peft warns about it.
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                model, _ = dreamsim(pretrained=pretrained, device=str(self.device), cache_dir=str(self.cache_dir),
                                    normalize_embeds=True, dreamsim_type=dreamsim_type)
        except OSError as exc:  # torch.hub's downloads (URLError) and missing files
            raise hub.WeightsUnavailableError(
                f"dreamsim {dreamsim_type}: could not load or download its weights into {self.cache_dir} ({exc})"
            ) from exc
        self.model = model.to(self.device).eval().requires_grad_(False)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "dreamsim_type": self.dreamsim_type, "pretrained": self.pretrained}

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.embed(dreamsim_preprocess(images.to(self.device))).cpu()

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # Re-normalising keeps the distance exact for features stored in reduced precision.
        a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
        return 1.0 - torch.bmm(b, a[:, :, None])[:, :, 0]
