"""IDX files (the MNIST family's format), read and written, gzipped or plain, with md5 checks.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the array in big-endian C order. See
http://yann.lecun.com/exdb/mnist/ (section "file formats").
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

#: IDX type byte -> numpy dtype (big-endian as stored on disk).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF: dict[str, int] = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}


class IdxError(ValueError):
    """An IDX file is truncated, corrupt or not an IDX file at all."""


class ChecksumError(ValueError):
    """A file's md5 is not the one it should have."""


def md5_bytes(data: bytes) -> str:
    """Hex md5 of ``data``."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_md5(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a file's bytes, read in chunks so large files need little memory."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def verify_md5(path: str | os.PathLike[str], expected: str) -> None:
    """Raise :class:`ChecksumError` naming ``path`` unless its md5 is ``expected``.

    Raises:
        ChecksumError: if the md5 differs.
        FileNotFoundError: if ``path`` does not exist.
    """
    actual = file_md5(path)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: md5 is {actual}, expected {expected}; the file is corrupt or "
                            "not the expected release. Delete it so that it is fetched again.")


def read_decompressed(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, gunzipped when they are a gzip stream (sniffed, not from the name).

    Raises:
        IdxError: if the gzip stream is corrupt or truncated; the message names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    # Sniff the gzip magic rather than trust the suffix: some mirrors serve the
    # decompressed file under a .gz name, and vice versa.
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise IdxError(f"{path}: corrupt or truncated gzip stream ({e})") from e


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into a native-endian array.

    Args:
        data: the whole file content.
        source: what to call the data in error messages (a file name).

    Returns:
        A writable array of the stored shape and type.

    Raises:
        IdxError: if the magic number is wrong or the data is truncated or too long.
    """
    if len(data) < 4:
        raise IdxError(f"{source}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_TYPES:
        raise IdxError(f"{source}: not an IDX file (magic number 0x{data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{source}: truncated header ({len(data)} bytes, {ndim} dims need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    count = int(np.prod(shape, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{source}: {what}: shape {tuple(shape)} needs {expected} bytes, file has {len(data)}")
    # astype copies, which makes the result writable (frombuffer views are read-only)
    # and native-endian in one go.
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzipped or plain (detected from the content, not the name).

    Raises:
        IdxError: if the file is truncated or corrupt; the message names the file.
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    return parse_idx(read_decompressed(path), source=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as an uncompressed IDX file."""
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str[1:]
    if key not in _TYPE_OF:
        raise TypeError(f"IDX cannot store dtype {arr.dtype}; use one of uint8, int8, int16, int32, "
                        "float32, float64")
    code = _TYPE_OF[key]
    if arr.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {arr.ndim}")
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically.

    Args:
        path: destination.
        array: the data (uint8, int8, int16, int32, float32 or float64).
        compress: gzip the file; ``None`` gzips when ``path`` ends in ``.gz``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    data = idx_bytes(array)
    if compress if compress is not None else path.suffix == ".gz":
        # mtime=0 so the same array always gives the same bytes (and md5).
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)
    return path


def current_umask() -> int:
    """The process umask (read without changing it for longer than an instant)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see either no file or the complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
