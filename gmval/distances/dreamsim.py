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
  checkout and the DINO backbone in ``checkpoints/``. gmval pins that checkout to a commit
  (:data:`HUB_COMMITS`; dreamsim asks for the moving ``main``), so the folder is
  ``facebookresearch_dino_<commit>/`` (``facebookresearch_dinov2_<commit>/``), and fetches
  the backbone itself, checked. Online, all of it is fetched on first use; to run offline,
  copy a ``cache_dir`` filled that way. ``clip_vitb32`` and ``open_clip_vitb32`` need only
  the release zip.

Integrity: the release zip and the DINO backbone must match a full SHA-256, pinned in
:data:`RELEASE_SHA256` / :data:`HUB_WEIGHTS` or passed as ``sha256={file name: digest}``
(the upstream publishes none, so none is pinned yet). The files unpacked from a verified zip
are recorded in ``.gmval-<type>.sha256.json`` and checked against it on every load; every
``torch.load`` during the load is ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
import zipfile
from collections.abc import Iterator
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

#: torch.hub repositories dreamsim loads, pinned to the commit their ``main`` pointed at.
HUB_COMMITS = {"facebookresearch/dino": "7c446df5b9f45747937fb0d72314eb9f7b66930a",
               "facebookresearch/dinov2": "7764ea0f912e53c92e82eb78a2a1631e92725fc8"}

_DINO = ("checkpoints/dino_vitbase16_pretrain.pth",
         "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth", None)
_DINOV2 = ("checkpoints/dinov2_vitb14_pretrain.pth",
           "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth", None)
#: The backbone each type's hub code reads from ``cache_dir`` (path in it, source, full SHA-256
#: or None where none is published), fetched and checked by gmval before the hub code runs.
HUB_WEIGHTS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "ensemble": (_DINO,), "dino_vitb16": (_DINO,), "dinov2_vitb14": (_DINOV2,),
    "open_clip_vitb32": (), "clip_vitb32": (), "synclr_vitb16": (),
}
#: The hub repository checkout each type needs (a folder in ``cache_dir``).
HUB_REPOS = {"ensemble": "facebookresearch/dino", "dino_vitb16": "facebookresearch/dino",
             "dinov2_vitb14": "facebookresearch/dinov2"}
#: Full SHA-256 of each type's release zip; the releases publish none, so pass ``sha256``.
RELEASE_SHA256: dict[str, str | None] = dict.fromkeys(RELEASE_FILES)


def hub_checkout(repo: str) -> str:
    """torch.hub's folder name for the pinned commit of ``repo``."""
    return f"{repo.replace('/', '_')}_{HUB_COMMITS[repo]}"


#: DreamSim's input side (``dreamsim_args['img_size']``).
IMAGE_SIZE = 224


def default_cache_dir() -> Path:
    """``$GMVAL_DATA/models/dreamsim``."""
    return hub.cache_root("models") / "dreamsim"


def ensure_release(dreamsim_type: str, cache_dir: Path, sha256: dict[str, str] | None = None) -> None:
    """Make sure everything ``dreamsim()`` reads from ``cache_dir`` is there and verified.

    The release zip and the DINO backbone are fetched with :func:`gmval.hub.fetch` (timeout,
    offline switch, SHA-256) rather than by dreamsim or torch.hub, which check nothing.

    Args:
        dreamsim_type: a key of :data:`RELEASE_FILES`.
        cache_dir: the folder.
        sha256: file name (the zip's, e.g. ``dreamsim_ensemble_checkpoint.zip``, or the
            backbone's) -> full SHA-256, for files gmval pins none for.

    Raises:
        WeightsUnavailableError: files are missing and cannot be downloaded.
        WeightsIntegrityError: a file does not match its SHA-256, none is known, or the
            release files were not unpacked from a verified zip.
    """
    from dreamsim.config import dreamsim_weights

    pins = sha256 or {}
    how = "sha256={<file name>: <hex>} (--rerank-arg 'sha256={...}')"
    cache_dir.mkdir(parents=True, exist_ok=True)
    repo = HUB_REPOS.get(dreamsim_type)
    if repo is not None and not (cache_dir / hub_checkout(repo)).is_dir() and hub.offline():
        raise hub.WeightsUnavailableError(
            f"dreamsim {dreamsim_type}: downloads are disabled and the torch.hub checkout "
            f"{cache_dir / hub_checkout(repo)}"
            f" (github.com/{repo} at {HUB_COMMITS[repo]}) is missing. Run DreamSimDistance once online with the "
            "same cache_dir, then copy it.")
    for rel, url, pinned in HUB_WEIGHTS[dreamsim_type]:
        name = rel.rsplit("/", 1)[-1]
        hub.fetch(url, cache_dir / rel, sha256=hub.require_pin(f"the DINO backbone {name} ({url})",
                                                               pins.get(name, pinned), how))
    manifest = cache_dir / f".gmval-{dreamsim_type}.sha256.json"
    if all((cache_dir / rel).exists() for rel in RELEASE_FILES[dreamsim_type]):
        _check_manifest(dreamsim_type, cache_dir, manifest)
        return
    url = dreamsim_weights[dreamsim_type]
    name = url.rsplit("/", 1)[-1]
    pin = hub.require_pin(f"the DreamSim release {name} ({url})", pins.get(name, RELEASE_SHA256[dreamsim_type]), how)
    archive = cache_dir / "pretrained.zip"  # dreamsim's own name, so either downloader reuses the other's
    hub.fetch(url, archive, sha256=pin, timeout=60.0)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(cache_dir)
    archive.unlink()
    missing = [rel for rel in RELEASE_FILES[dreamsim_type] if not (cache_dir / rel).exists()]
    if missing:
        raise hub.WeightsUnavailableError(f"dreamsim {dreamsim_type}: {url} did not provide {missing} in {cache_dir}")
    record_release(dreamsim_type, cache_dir)


def _release_files(dreamsim_type: str, cache_dir: Path) -> Iterator[Path]:
    for rel in RELEASE_FILES[dreamsim_type]:
        path = cache_dir / rel
        yield from sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def record_release(dreamsim_type: str, cache_dir: Path) -> Path:
    """Record the SHA-256 of the release files now in ``cache_dir`` as the ones to load.

    Called after unpacking a verified zip; call it yourself only for files you verified
    (e.g. unpacked by hand from a zip whose SHA-256 you checked).
    """
    manifest = cache_dir / f".gmval-{dreamsim_type}.sha256.json"
    digests = {str(p.relative_to(cache_dir)): hub.sha256_file(p) for p in _release_files(dreamsim_type, cache_dir)}
    manifest.write_text(json.dumps(digests, indent=1, sort_keys=True))
    return manifest


def _check_manifest(dreamsim_type: str, cache_dir: Path, manifest: Path) -> None:
    try:
        digests = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise hub.WeightsIntegrityError(
            f"dreamsim {dreamsim_type}: the files in {cache_dir} were not unpacked by gmval from a verified release "
            f"zip ({manifest.name} is missing or unreadable: {exc}); delete them to download the release again, or "
            f"see gmval.distances.dreamsim.record_release") from exc
    for path in _release_files(dreamsim_type, cache_dir):
        rel = str(path.relative_to(cache_dir))
        if rel not in digests:
            raise hub.WeightsIntegrityError(f"dreamsim {dreamsim_type}: {path} is not part of the verified release "
                                            f"recorded in {manifest}; delete it")
        hub.verify(path, digests[rel])


@contextlib.contextmanager
def pinned_torch_hub() -> Iterator[None]:
    """Make dreamsim's ``torch.hub.load`` of a moving branch load the pinned commit (no remote lookup)."""
    original = torch.hub.load

    def load(repo_or_dir: str, model: str, *args: Any, **kwargs: Any) -> Any:
        repo = repo_or_dir.partition(":")[0]
        if repo not in HUB_COMMITS:
            raise hub.WeightsIntegrityError(f"dreamsim asked torch.hub for {repo_or_dir}, which gmval has no "
                                            f"pinned commit for; refusing to run its code")
        kwargs |= {"trust_repo": True, "skip_validation": True}
        return original(f"{repo}:{HUB_COMMITS[repo]}", model, *args, **kwargs)

    torch.hub.load = load
    try:
        yield
    finally:
        torch.hub.load = original


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
        sha256: file name -> full SHA-256 for the files gmval pins none for (the release zip,
            the DINO backbone); see :func:`ensure_release`.
        **kw: :class:`~gmval.component.Component` arguments (device, batch_size).

    Raises:
        WeightsUnavailableError: weights are neither in ``cache_dir`` nor downloadable.
        WeightsIntegrityError: a weight file does not match its SHA-256, or none is known.
    """

    name = "dreamsim"

    def __init__(self, dreamsim_type: str = "ensemble", cache_dir: str | Path | None = None, pretrained: bool = True,
                 sha256: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        from dreamsim import dreamsim

        if dreamsim_type not in RELEASE_FILES:
            raise ValueError(f"dreamsim: unknown type {dreamsim_type!r}; expected one of {sorted(RELEASE_FILES)}")
        self.dreamsim_type, self.pretrained = dreamsim_type, pretrained
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        ensure_release(dreamsim_type, self.cache_dir, sha256)
        try:
            # dreamsim points torch.hub at cache_dir and never points it back; restore it.
            with hub.torch_hub_dir(self.cache_dir), pinned_torch_hub(), hub.weights_only_loads(), \
                    contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
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
