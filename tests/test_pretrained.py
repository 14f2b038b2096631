"""Hub-backed components (CLIP, LPIPS, DreamSim, MANIQA) and gmval.hub, fully offline.

Real weights cannot be downloaded here, so each test writes random weights in exactly the
format and place the real loader reads (torchvision's checkpoint cache, the Hugging Face
hub cache, DreamSim's release layout, pyiqa's checkpoint format) and runs the real
loading code on them with downloads disabled. What is checked is the plumbing (paths,
formats, offline errors) and the maths (decompositions equal the libraries' forward
passes), not the pretrained numbers.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gmval import hub

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
CLIP_OPENAI_REPO = "models--timm--vit_base_patch32_clip_224.openai"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the network: gmval's switch and the Hugging Face one."""
    import huggingface_hub.constants

    monkeypatch.setenv("GMVAL_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once, at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def _smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Natural-image-like (smooth) RGB images: upsampled coarse noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=g)
    return (F.interpolate(coarse, size=(size, size), mode="bilinear") * 255).round().to(torch.uint8)


# --------------------------------------------------------------------------- gmval.hub


def test_sha256_and_verify(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert hub.sha256_file(f) == digest
    hub.verify(f, digest)
    hub.verify(f, digest.upper())
    with pytest.raises(hub.WeightsIntegrityError, match=f"{f}: SHA-256 {digest} does not match the pinned {'0' * 64}"):
        hub.verify(f, "0" * 64)
    with pytest.raises(ValueError, match="64 hex digits"):
        hub.verify(f, digest[:8])  # a prefix is not a pin
    with pytest.raises(hub.WeightsIntegrityError, match="no SHA-256 is pinned in gmval for w.bin.*pass it as sha256"):
        hub.require_pin("w.bin", None, "sha256=<hex>")
    assert hub.require_pin("w.bin", digest, "") == digest


def test_hash_prefix_from_name() -> None:
    assert hub.hash_prefix_from_name(ALEXNET_FILE) == "7be5be79"
    assert hub.hash_prefix_from_name("https://x/vgg16-397923af.pth") == "397923af"
    assert hub.hash_prefix_from_name("ckpt_koniq10k.pt") is None


def test_fetch_checks_hash_and_writes_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GMVAL_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc" * 1000)
    digest = hub.sha256_file(src)
    dest = tmp_path / "cache" / "sub" / "w.bin"
    assert hub.fetch(src.as_uri(), dest, sha256=digest) == dest
    assert dest.read_bytes() == src.read_bytes()
    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(ValueError, match="does not match"):
        hub.fetch(src.as_uri(), bad, sha256="0" * 64)
    assert sorted(p.name for p in bad.parent.iterdir()) == ["sub"]  # no partial file left behind
    # An unreachable server fails fast with a message saying what to put where.
    start = time.perf_counter()
    with pytest.raises(hub.WeightsUnavailableError, match="put it at .*nothing.bin"):
        hub.fetch("http://127.0.0.1:9/nothing.bin", tmp_path / "nothing.bin", sha256=digest, timeout=5)
    assert time.perf_counter() - start < 10


def test_fetch_offline_and_cached(tmp_path: Path) -> None:
    dest = tmp_path / "w.bin"
    digest = hashlib.sha256(b"cached").hexdigest()
    with pytest.raises(hub.WeightsUnavailableError, match=r"https://example.org/w.bin.*w\.bin"):
        hub.fetch("https://example.org/w.bin", dest, sha256=digest)
    dest.write_bytes(b"cached")
    assert hub.fetch("https://example.org/w.bin", dest, sha256=digest) == dest
    # A cached file is verified too: a wrong one is named with both hashes, and kept for inspection.
    dest.write_bytes(b"tampered")
    wrong = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(hub.WeightsIntegrityError, match=f"{dest}: SHA-256 {wrong} does not match the pinned {digest}"):
        hub.fetch("https://example.org/w.bin", dest, sha256=digest)
    assert dest.read_bytes() == b"tampered"


def test_checkpoints_load_weights_only(tmp_path: Path) -> None:
    """hub.load_checkpoint and hub.weights_only_loads never run a pickle's code."""
    plain = tmp_path / "plain.pt"
    torch.save({"params": {"w": torch.ones(2)}, "epoch": np.int64(3), "dtype": np.dtype("float32")}, plain)
    assert torch.equal(hub.load_checkpoint(plain)["params"]["w"], torch.ones(2))
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "payload": _Payload()}, evil)
    with pytest.raises(hub.WeightsIntegrityError, match="evil.pt is not a plain weights file"):
        hub.load_checkpoint(evil)
    with hub.weights_only_loads(), pytest.raises(Exception, match="Weights only load failed"):
        torch.load(evil, weights_only=False)  # a library's explicit False is overridden
    assert _Payload.ran == 0


class _Payload:
    """An object whose unpickling would run code (counted, to prove it never ran)."""

    ran = 0

    def __reduce__(self) -> tuple:
        return (_Payload._run, ())

    @staticmethod
    def _run() -> None:
        _Payload.ran += 1


def test_cache_roots_follow_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hub.cache_root("torch") == tmp_path / "th"
    assert hub.cache_root("torch_hub") == tmp_path / "th" / "hub"
    assert hub.cache_root("hf") == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hc"))
    assert hub.cache_root("hf") == tmp_path / "hc"
    with pytest.raises(ValueError):
        hub.cache_root("nope")  # type: ignore[arg-type]


def test_torch_hub_dir_is_restored(tmp_path: Path) -> None:
    before = torch.hub._hub_dir
    with hub.torch_hub_dir(tmp_path):
        assert torch.hub.get_dir() == str(tmp_path)
    assert torch.hub._hub_dir == before


# --------------------------------------------------------------------------- CLIP


@pytest.fixture(scope="session")
def clip_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Random ViT-B-32 CLIP weights as a file, and the same file in a Hugging Face cache as tag 'openai'."""
    import open_clip
    import safetensors.torch

    root = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = root / "vit_b32_random.safetensors"
    # Half precision halves the file; open_clip copies it into its float32 parameters.
    safetensors.torch.save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, path)
    hf_cache = root / "hf"
    commit = "0" * 40
    repo = hf_cache / CLIP_OPENAI_REPO
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    os.link(path, repo / "snapshots" / commit / "open_clip_model.safetensors")
    return path, hf_cache


@pytest.fixture(scope="session")
def clip_encoder(clip_weights: tuple[Path, Path]) -> object:
    """CLIPEncoder on the random weights file, built once through the registry."""
    from gmval.encoders import create_encoder

    return create_encoder("clip", model="ViT-B-32", pretrained=str(clip_weights[0]), device="cpu", batch_size=2)


def test_clip_local_file(clip_weights: tuple[Path, Path], clip_encoder: object) -> None:
    enc = clip_encoder
    assert enc.dim == 512
    params = enc.params()
    assert params["pretrained"] == "file" and params["weights_sha256"] == hub.sha256_file(clip_weights[0])
    grey = _images(3, 1, 28)
    e = enc.encode(grey)  # batches of 2 and 1
    assert e.dtype == torch.float32 and e.shape == (3, 512)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    # Deterministic, batch-independent, and grey is RGB with three equal channels.
    torch.testing.assert_close(enc.encode_batch(grey.expand(-1, 3, -1, -1)), e, atol=1e-5, rtol=1e-5)
    assert enc.encode_batch(_images(1, 3, 40, seed=1)).shape == (1, 512)


def test_clip_preprocessing_matches_open_clip(clip_encoder: object) -> None:
    """The batched tensor transform reproduces open_clip's PIL validation transform."""
    import open_clip
    from PIL import Image

    from gmval.encoders.clip import clip_preprocess

    enc = clip_encoder
    preprocess_val = open_clip.image_transform(enc.size, is_train=False, mean=tuple(enc.mean.flatten().tolist()),
                                               std=tuple(enc.std.flatten().tolist()),
                                               interpolation=enc.interpolation, resize_mode=enc.resize_mode)
    for size in (32, 300):  # upsampling (CIFAR) and antialiased downsampling
        x = _smooth_images(2, size, seed=size)
        ours = clip_preprocess(x, enc.size, enc.mean, enc.std, enc.interpolation, enc.resize_mode)
        ref = torch.stack([preprocess_val(Image.fromarray(im.permute(1, 2, 0).numpy())) for im in x])
        # PIL rounds to uint8 between passes: one grey level (1/255/std ~ 0.015) at most.
        assert (ours - ref).abs().max() < 0.03
    with torch.inference_mode():
        cos = (enc.encode_batch(x) * F.normalize(enc.net.encode_image(ref), dim=1)).sum(1)
    assert cos.min() > 0.999
    # Non-square images: shortest side to 224, centre crop.
    wide = _images(1, 3, 20)[:, :, :10].contiguous()
    assert clip_preprocess(wide, (224, 224), enc.mean, enc.std).shape == (1, 3, 224, 224)


def test_clip_tag_from_hf_cache_offline(clip_weights: tuple[Path, Path], clip_encoder: object) -> None:
    """pretrained='openai' resolves through the Hugging Face cache (offline) and gets the tag's QuickGELU."""
    from open_clip.transformer import QuickGELU

    from gmval.encoders.clip import CLIPEncoder

    digest = hub.sha256_file(clip_weights[0])
    tagged = CLIPEncoder(model="ViT-B-32", pretrained="openai", cache_dir=clip_weights[1], sha256=digest,
                         device="cpu")
    assert tagged.params()["pretrained"] == "openai" and "weights_sha256" not in tagged.params()
    torch.testing.assert_close(tagged.net.visual.conv1.weight, clip_encoder.net.visual.conv1.weight)
    assert isinstance(tagged.net.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert not isinstance(clip_encoder.net.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


def test_clip_tag_is_verified_before_loading(clip_weights: tuple[Path, Path]) -> None:
    from gmval.encoders.clip import CLIPEncoder

    with pytest.raises(hub.WeightsIntegrityError,
                       match="no SHA-256 is pinned in gmval for open_clip weights ViT-B-32/openai"):
        CLIPEncoder(model="ViT-B-32", pretrained="openai", cache_dir=clip_weights[1], device="cpu")
    with pytest.raises(hub.WeightsIntegrityError,
                       match=f"open_clip_model.safetensors: SHA-256 {hub.sha256_file(clip_weights[0])} does not match"):
        CLIPEncoder(model="ViT-B-32", pretrained="openai", cache_dir=clip_weights[1], sha256="1" * 64, device="cpu")


def test_clip_missing_tag_fails_fast(tmp_path: Path) -> None:
    from gmval.encoders.clip import CLIPEncoder

    start = time.perf_counter()
    with pytest.raises(hub.WeightsUnavailableError, match="laion/CLIP-ViT-B-32-laion2B-s34B-b79K"):
        CLIPEncoder(model="ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=tmp_path, sha256="0" * 64,
                    device="cpu")
    assert time.perf_counter() - start < 30


# --------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="session")
def alexnet_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A TORCH_HOME-like folder holding random AlexNet weights under torchvision's file name."""
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, home / "hub" / "checkpoints" / ALEXNET_FILE)
    return home, state


@pytest.fixture()
def lpips_home(alexnet_home: tuple[Path, dict[str, torch.Tensor]],
               monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, torch.Tensor]]:
    """``alexnet_home`` with its random backbone's SHA-256 pinned in place of torchvision's."""
    from gmval.distances import lpips as gmval_lpips

    digest = hub.sha256_file(alexnet_home[0] / "hub" / "checkpoints" / ALEXNET_FILE)
    monkeypatch.setitem(gmval_lpips.BACKBONE_SHA256, "alex", digest)
    return alexnet_home


def test_lpips_refuses_a_cached_backbone_with_another_hash(alexnet_home: tuple[Path, dict[str, torch.Tensor]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The random backbone sits under torchvision's real name: its hash is not the pinned one."""
    from gmval.distances.lpips import BACKBONE_SHA256, LPIPSDistance

    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    path = alexnet_home[0] / "hub" / "checkpoints" / ALEXNET_FILE
    with pytest.raises(hub.WeightsIntegrityError,
                       match=f"{path}: SHA-256 {hub.sha256_file(path)} "
                             f"does not match the pinned {BACKBONE_SHA256['alex']}"):
        LPIPSDistance(cache_dir=alexnet_home[0], device="cpu")
    assert loads == []  # never read


def test_lpips_loads_backbone_from_cache_dir(alexnet_home: tuple[Path, dict[str, torch.Tensor]],
                                             lpips_home: object) -> None:
    from gmval.distances import create_distance

    home, state = alexnet_home
    before = torch.hub._hub_dir
    d = create_distance("lpips", cache_dir=home, device="cpu")
    assert torch.hub._hub_dir == before
    # lpips's slice1 holds AlexNet's features[0:2]: the conv must carry the file's weights.
    torch.testing.assert_close(d.model.net.slice1[0].weight, state["features.0.weight"])
    assert d.params() == {"name": "lpips", "version": 1, "net": "alex", "lpips_version": "0.1",
                          "pnet_rand": False, "spatial_size": 64}


def test_lpips_follows_torch_home(alexnet_home: tuple[Path, dict[str, torch.Tensor]], lpips_home: object,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gmval.distances.lpips import LPIPSDistance

    home, state = alexnet_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    d = LPIPSDistance(device="cpu")
    torch.testing.assert_close(d.model.net.slice5[0].weight, state["features.10.weight"])


@pytest.mark.parametrize("spatial_size", [64, None])
def test_lpips_decomposition_equals_lpips_forward(alexnet_home: tuple[Path, dict[str, torch.Tensor]],
                                                  lpips_home: object, spatial_size: int | None) -> None:
    from gmval.distances.lpips import LPIPSDistance

    d = LPIPSDistance(cache_dir=alexnet_home[0], spatial_size=spatial_size, device="cpu")
    side = 28 if spatial_size else 48  # AlexNet needs >= 32 px without resizing
    x, y = _images(4, 1, side), _images(4, 1, side, seed=1)
    with torch.inference_mode():
        ref = d.model(d.preprocess(x), d.preprocess(y)).flatten()
        # lpips's own [0, 1] entry point agrees with our [-1, 1] preprocessing.
        ref01 = d.model((d.preprocess(x) + 1) / 2, (d.preprocess(y) + 1) / 2, normalize=True).flatten()
    torch.testing.assert_close(d(x, y), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref01, ref)
    # pairwise over K candidates equals lpips image by image.
    fa, fb = d.features(x), d.features(torch.cat([y, x]))
    cand = torch.stack([fb[:4], fb[4:]], dim=1)  # (4, 2, F): candidates y_i and x_i
    pw = d.pairwise(fa, cand)
    torch.testing.assert_close(pw[:, 0], ref, atol=1e-5, rtol=1e-5)
    assert pw[:, 1].abs().max() < 1e-5  # distance to itself
    # Cached half-precision features stay within 1% of the exact value.
    torch.testing.assert_close(d.pairwise(d.features_of(x), d.features_of(y)[:, None])[:, 0], ref,
                               rtol=1e-2, atol=1e-4)


def test_lpips_missing_backbone_offline(tmp_path: Path) -> None:
    from gmval.distances.lpips import LPIPSDistance

    with pytest.raises(hub.WeightsUnavailableError,
                       match=r"download\.pytorch\.org/models/alexnet-owt-7be5be79\.pth.*hub/checkpoints"):
        LPIPSDistance(cache_dir=tmp_path, device="cpu")
    assert LPIPSDistance(cache_dir=tmp_path, pnet_rand=True, device="cpu").params()["pnet_rand"] is True


def test_lpips_download_checks_torchvision_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Online path: a download whose content does not match the hash in torchvision's file name is rejected."""
    from gmval.distances import lpips as gmval_lpips

    monkeypatch.delenv("GMVAL_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    fake = tmp_path / "server" / ALEXNET_FILE
    fake.parent.mkdir()
    fake.write_bytes(b"not alexnet")
    monkeypatch.setattr(gmval_lpips, "backbone_url", lambda net: fake.as_uri())
    with pytest.raises(ValueError, match="7be5be79"):
        gmval_lpips.ensure_backbone("alex", tmp_path / "hub")
    assert not (tmp_path / "hub" / "checkpoints" / ALEXNET_FILE).exists()


# --------------------------------------------------------------------------- DreamSim


def _write_vit_as_dino(path: Path, patch_size: int, proj_dim: int) -> None:
    """A random backbone in the format of dreamsim's ``*_vitb{p}_pretrain.pth.tar`` (CLIP as DINO ViT)."""
    from dreamsim.feature_extraction.vision_transformer import vit_base

    vit = vit_base(patch_size=patch_size)
    vit.pos_drop = torch.nn.LayerNorm(vit.embed_dim)  # CLIP's ln_pre, where dreamsim's loader puts it
    state = vit.state_dict()
    state["proj"] = torch.randn(vit.embed_dim, proj_dim) / vit.embed_dim ** 0.5
    torch.save({"state_dict": state}, path)


def _write_lora(cache: Path, dreamsim_type: str, folder: str) -> None:
    """A LoRA adapter with non-zero weights, saved by peft as dreamsim's release ships it."""
    from dreamsim.config import dreamsim_args
    from dreamsim.model import PerceptualModel
    from peft import LoraConfig, get_peft_model

    from gmval.distances.dreamsim import pinned_torch_hub

    with hub.torch_hub_dir(cache), pinned_torch_hub():
        model = PerceptualModel(**dreamsim_args["model_config"][dreamsim_type], device="cpu", load_dir=str(cache),
                                normalize_embeds=True)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
                                                  target_modules=["qkv"]))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (a no-op adapter); make it matter
            torch.nn.init.normal_(p, std=0.02)
    peft_model.save_pretrained(str(cache / folder))


@pytest.fixture(scope="session")
def dreamsim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dreamsim's release layout for 'open_clip_vitb32' (the type needing no torch.hub), random weights."""
    cache = tmp_path_factory.mktemp("dreamsim")
    torch.manual_seed(0)
    _write_vit_as_dino(cache / "open_clip_vitb32_pretrain.pth.tar", 32, 512)
    _write_lora(cache, "open_clip_vitb32", "open_clip_vitb32_single_lora")
    from gmval.distances.dreamsim import record_release

    record_release("open_clip_vitb32", cache)  # the files this test made stand for a verified release
    return cache


def _check_dreamsim(d: object, dim: int) -> None:
    """Features are unit vectors and 1 - cos of them is dreamsim's own forward."""
    from gmval.distances.dreamsim import dreamsim_preprocess

    x, y = _images(2, 1, 28), _images(2, 3, 32, seed=1)
    fx = d.features(x)
    assert fx.shape == (2, dim) and fx.dtype == torch.float32
    torch.testing.assert_close(fx.norm(dim=1), torch.ones(2))
    with torch.inference_mode():
        ref = d.model(dreamsim_preprocess(x), dreamsim_preprocess(y))
    torch.testing.assert_close(d(x, y), ref, atol=1e-5, rtol=1e-5)
    pw = d.pairwise(fx, torch.stack([d.features(y), fx], dim=1))
    torch.testing.assert_close(pw[:, 0], ref, atol=1e-5, rtol=1e-5)
    assert pw[:, 1].abs().max() < 1e-5


def test_dreamsim_single_branch_offline(dreamsim_cache: Path) -> None:
    from safetensors.torch import load_file

    from gmval.distances import create_distance

    before = torch.hub._hub_dir
    d = create_distance("dreamsim", dreamsim_type="open_clip_vitb32", cache_dir=dreamsim_cache, device="cpu")
    assert torch.hub._hub_dir == before  # dreamsim's set_dir was undone
    assert d.params() == {"name": "dreamsim", "version": 1, "dreamsim_type": "open_clip_vitb32", "pretrained": True}
    _check_dreamsim(d, 512)
    # The LoRA weights on disk are the ones in the model.
    saved = load_file(dreamsim_cache / "open_clip_vitb32_single_lora" / "adapter_model.safetensors")
    key = next(k for k in saved if "lora_B" in k and "blocks.0." in k)
    loaded = dict(d.model.named_parameters())
    match = [v for k, v in loaded.items() if "lora_B" in k and "blocks.0." in k]
    assert any(torch.equal(v, saved[key]) for v in match)


def test_dreamsim_missing_weights_offline(tmp_path: Path) -> None:
    from gmval.distances.dreamsim import HUB_COMMITS, DreamSimDistance

    zip_name = "dreamsim_clip_vitb32_checkpoint.zip"
    with pytest.raises(hub.WeightsIntegrityError,
                       match=f"no SHA-256 is pinned in gmval for the DreamSim release {zip_name}"):
        DreamSimDistance(dreamsim_type="clip_vitb32", cache_dir=tmp_path / "ds", device="cpu")
    with pytest.raises(hub.WeightsUnavailableError, match=zip_name):
        DreamSimDistance(dreamsim_type="clip_vitb32", cache_dir=tmp_path / "ds", sha256={zip_name: "0" * 64},
                         device="cpu")
    with pytest.raises(hub.WeightsUnavailableError,
                       match=f"facebookresearch_dino_{HUB_COMMITS['facebookresearch/dino']}"):
        DreamSimDistance(dreamsim_type="ensemble", cache_dir=tmp_path / "ds", device="cpu")
    with pytest.raises(ValueError, match="unknown type"):
        DreamSimDistance(dreamsim_type="vgg", cache_dir=tmp_path / "ds", device="cpu")


def test_dreamsim_release_zip_is_fetched_and_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Online path: the release zip is downloaded (here from a file:// URL), unpacked and removed."""
    import zipfile

    from dreamsim import config

    from gmval.distances.dreamsim import RELEASE_FILES, ensure_release

    monkeypatch.delenv("GMVAL_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("clip_vitb32_pretrain.pth.tar", b"backbone")
        zf.writestr("clip_vitb32_single_lora/adapter_config.json", b"{}")
    monkeypatch.setitem(config.dreamsim_weights, "clip_vitb32", archive.as_uri())
    cache = tmp_path / "nested" / "ds"  # dreamsim itself would fail on a missing parent (os.mkdir)
    right = {"release.zip": hub.sha256_file(archive)}
    # A zip with another hash is refused before anything is unpacked.
    with pytest.raises(hub.WeightsIntegrityError, match="release.zip.*does not match the pinned 1111"):
        ensure_release("clip_vitb32", cache, {"release.zip": "1" * 64})
    assert [p.name for p in cache.iterdir()] == []
    ensure_release("clip_vitb32", cache, right)
    assert all((cache / rel).exists() for rel in RELEASE_FILES["clip_vitb32"])
    assert not (cache / "pretrained.zip").exists()
    ensure_release("clip_vitb32", cache)  # unpacked files are checked against the verified zip's record
    (cache / "clip_vitb32_pretrain.pth.tar").write_bytes(b"replaced")
    with pytest.raises(hub.WeightsIntegrityError, match="clip_vitb32_pretrain.pth.tar: SHA-256 .* does not match"):
        ensure_release("clip_vitb32", cache)
    (cache / "clip_vitb32_single_lora" / "extra.bin").write_bytes(b"planted")
    (cache / "clip_vitb32_pretrain.pth.tar").write_bytes(b"backbone")
    with pytest.raises(hub.WeightsIntegrityError, match="extra.bin is not part of the verified release"):
        ensure_release("clip_vitb32", cache)
    # Files not unpacked by gmval (no record) are not trusted.
    (cache / ".gmval-clip_vitb32.sha256.json").unlink()
    with pytest.raises(hub.WeightsIntegrityError, match="not unpacked by gmval from a verified release"):
        ensure_release("clip_vitb32", cache)
    # A zip without the expected layout is reported, not left for dreamsim to trip over.
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("models/clip_vitb32_pretrain.pth.tar", b"backbone")
    with pytest.raises(hub.WeightsUnavailableError, match="did not provide"):
        ensure_release("clip_vitb32", tmp_path / "other", {"release.zip": hub.sha256_file(archive)})


def test_dreamsim_preprocess_matches_pil(dreamsim_cache: Path) -> None:
    from dreamsim.model import dreamsim
    from PIL import Image

    from gmval.distances.dreamsim import dreamsim_preprocess

    with hub.torch_hub_dir(dreamsim_cache):
        _, preprocess = dreamsim(pretrained=False, device="cpu", cache_dir=str(dreamsim_cache),
                                 dreamsim_type="open_clip_vitb32")
    x = _smooth_images(2, 32)
    ref = torch.cat([preprocess(Image.fromarray(im.permute(1, 2, 0).numpy())) for im in x])
    assert (dreamsim_preprocess(x) - ref).abs().max() < 2.5 / 255


_DINO_HUBCONF = '''\
"""Stand-in for github.com/facebookresearch/dino's hubconf.py: same entry point and weight URL."""
import torch
from dreamsim.feature_extraction.vision_transformer import vit_base

dependencies = ["torch"]


def dino_vitb16(pretrained=True, **kwargs):
    model = vit_base(patch_size=16, num_classes=0, **kwargs)
    if pretrained:
        state_dict = torch.hub.load_state_dict_from_url(
            url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
            map_location="cpu",
        )
        model.load_state_dict(state_dict, strict=True)
    return model
'''


@pytest.mark.slow
def test_dreamsim_ensemble_offline_with_filled_hub_cache(tmp_path: Path) -> None:
    """The default 'ensemble' runs offline once its cache holds the release files and torch.hub's DINO files.

    The DINO repository checkout is replaced by a minimal hubconf.py with the same entry point
    (its network is the same DINO ViT that dreamsim vendors); everything else is the real path.
    """
    from dreamsim.feature_extraction.vision_transformer import DINOHead, vit_base

    from gmval.distances.dreamsim import DreamSimDistance, hub_checkout, record_release

    cache = tmp_path / "ds"
    checkout = cache / hub_checkout("facebookresearch/dino")  # the pinned commit, not dreamsim's 'main'
    checkout.mkdir(parents=True)
    (checkout / "hubconf.py").write_text(_DINO_HUBCONF)
    (cache / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(vit_base(patch_size=16, num_classes=0).state_dict(),
               cache / "checkpoints" / "dino_vitbase16_pretrain.pth")
    head = DINOHead(768, 2048)
    student = {f"module.head.{k}": v for k, v in head.state_dict().items()}
    student["module.head.last_layer.weight"] = head.last_layer.weight.detach().clone()
    torch.save({"student": student}, cache / "dino_vitb16_pretrain.pth")
    _write_vit_as_dino(cache / "clip_vitb16_pretrain.pth.tar", 16, 512)
    _write_vit_as_dino(cache / "open_clip_vitb16_pretrain.pth.tar", 16, 512)
    _write_lora(cache, "ensemble", "ensemble_lora")
    record_release("ensemble", cache)
    backbone = {"dino_vitbase16_pretrain.pth": hub.sha256_file(cache / "checkpoints" / "dino_vitbase16_pretrain.pth")}
    with pytest.raises(hub.WeightsIntegrityError, match="no SHA-256 is pinned in gmval for the DINO backbone"):
        DreamSimDistance(cache_dir=cache, device="cpu")
    d = DreamSimDistance(cache_dir=cache, device="cpu", batch_size=2, sha256=backbone)
    _check_dreamsim(d, 768 + 512 + 512)


# --------------------------------------------------------------------------- MANIQA


@pytest.fixture(scope="session")
def maniqa_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Random MANIQA (KonIQ configuration) weights in both of pyiqa's formats.

    Returns ``{"params": state}`` as a file (pyiqa's ``pretrained_model_path`` format) and a
    cache folder holding the bare state dict under the hub file's name.
    """
    import timm
    from pyiqa.archs.maniqa_arch import MANIQA

    root = tmp_path_factory.mktemp("maniqa")
    original = timm.create_model
    with pytest.MonkeyPatch.context() as mp:  # no ImageNet ViT download for random weights
        mp.setattr(timm, "create_model", lambda *a, **k: original(*a, **{**k, "pretrained": False}))
        torch.manual_seed(0)
        state = MANIQA(pretrained=False, train_dataset="koniq", scale=0.8).state_dict()
    torch.save({"params": state}, root / "maniqa_random.pth")
    (root / "cache").mkdir()
    torch.save(state, root / "cache" / "ckpt_koniq10k.pt")
    return root / "maniqa_random.pth", root / "cache"


@pytest.fixture(scope="session")
def maniqa_model(maniqa_weights: tuple[Path, Path]) -> object:
    """MANIQAQuality on the random checkpoint file, built once through the registry."""
    from gmval.quality import create_quality_model

    return create_quality_model("maniqa", pretrained_model_path=maniqa_weights[0], device="cpu")


def test_maniqa_local_checkpoint_and_hub_cache(maniqa_weights: tuple[Path, Path], maniqa_model: object) -> None:
    from gmval.quality.maniqa import CHECKPOINT_SHA256, MANIQAQuality

    path, cache = maniqa_weights
    q = maniqa_model
    assert q.params() == {"name": "maniqa", "version": 1, "variant": "maniqa", "weights": hub.sha256_file(path),
                          "crops": 20}
    x = _images(1, 1, 28)  # MNIST-like; one ViT-B/8 pass costs seconds on CPU
    raw = q.raw_of(x)
    assert raw.shape == (1,) and raw.dtype == np.float64 and np.isfinite(raw).all()
    assert (raw >= 0).all()  # ReLU head, sigmoid weights
    qn = q.normalise(np.array([*raw, -0.1, 1.3, np.nan]))
    assert 0 <= qn[0] <= 1 and np.isnan(qn[3])
    np.testing.assert_array_equal(qn[1:3], [0.0, 1.0])
    # The random file sits under the real hub name: its hash is not the pinned one, and it is not read.
    file = cache / "ckpt_koniq10k.pt"
    with pytest.raises(hub.WeightsIntegrityError, match=f"{file}: SHA-256 {hub.sha256_file(file)} does not match the "
                                                        f"pinned {CHECKPOINT_SHA256['ckpt_koniq10k.pt']}"):
        MANIQAQuality(variant="maniqa", cache_dir=cache, device="cpu")
    with pytest.raises(hub.WeightsIntegrityError, match="no SHA-256 is pinned in gmval for the MANIQA checkpoint"):
        MANIQAQuality(variant="maniqa-kadid", cache_dir=cache, device="cpu")
    # The same weights as a bare state dict in the (pyiqa-style) hub cache load identically, given their hash.
    cached = MANIQAQuality(variant="maniqa", cache_dir=cache, sha256=hub.sha256_file(file), device="cpu")
    assert cached.params()["weights"] == "ckpt_koniq10k.pt"
    ours = cached.metric.net.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in q.metric.net.state_dict().items())


def test_maniqa_missing_checkpoint_offline(tmp_path: Path) -> None:
    from gmval.quality.maniqa import MANIQAQuality

    with pytest.raises(hub.WeightsUnavailableError, match=r"IQA-PyTorch-Weights.*MANIQA_PIPAL-ae6d356b\.pth"):
        MANIQAQuality(variant="maniqa-pipal", cache_dir=tmp_path, device="cpu")
    with pytest.raises(FileNotFoundError):
        MANIQAQuality(pretrained_model_path=tmp_path / "missing.pth", device="cpu")


def test_maniqa_crop_arithmetic() -> None:
    from gmval.quality.maniqa import crops_coincide

    assert crops_coincide(28, 28, 224, 20) and crops_coincide(32, 32, 224, 20)
    assert crops_coincide(227, 227, 224, 20)  # step (227 - 224) // 4 == 0
    assert not crops_coincide(228, 228, 224, 20)
    assert not crops_coincide(32, 64, 224, 20)  # upsampled to 225 x 450
    assert not crops_coincide(225, 225, 224, 2)  # step (225 - 224) // 1 == 1


@pytest.mark.slow
def test_maniqa_single_crop_shortcut_is_exact(maniqa_model: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """For small images, scoring one crop equals pyiqa's multi-crop forward (4 crops here, 20 by default)."""
    q = maniqa_model
    # Same arithmetic as 20 crops (4 steps per axis), 5x cheaper to check.
    monkeypatch.setattr(q.metric.net, "test_sample", 4)
    x = _images(1, 3, 32)
    with torch.inference_mode():
        full = q.metric(x.float() / 255).flatten().double().numpy()
    np.testing.assert_allclose(q.raw(x), full, rtol=1e-5)
    assert q.metric.net.test_sample == 4  # restored after the one-crop pass


# --------------------------------------------------------------------------- GPU


@pytest.mark.cuda
def test_gpu_matches_cpu(alexnet_home: tuple[Path, dict[str, torch.Tensor]], lpips_home: object,
                         clip_weights: tuple[Path, Path], dreamsim_cache: Path) -> None:
    from gmval.distances.dreamsim import DreamSimDistance
    from gmval.distances.lpips import LPIPSDistance
    from gmval.encoders.clip import CLIPEncoder

    x, y = _images(4, 3, 32), _images(4, 3, 32, seed=1)
    for device in ("cpu", "cuda"):
        lp = LPIPSDistance(cache_dir=alexnet_home[0], device=device)
        ds = DreamSimDistance(dreamsim_type="open_clip_vitb32", cache_dir=dreamsim_cache, device=device)
        enc = CLIPEncoder(pretrained=str(clip_weights[0]), device=device)
        out = (lp(x, y), ds(x, y), enc.encode(x))
        assert all(t.device.type == "cpu" for t in out)
        if device == "cpu":
            ref = out
    for got, want in zip(out, ref, strict=True):
        torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)
