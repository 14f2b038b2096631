"""Where gmval reads and writes: one place, overridable by environment variables.

``GMVAL_DATA`` moves the data and cache folder (default ``<repo>/data`` in a checkout,
``~/.cache/gmval`` for an installed package), ``GMVAL_FIGURES``
the figures folder. Pretrained weights follow the conventions of the libraries that
own them: ``TORCH_HOME`` for torch-hub checkpoints and ``HF_HOME`` for Hugging Face.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In a checkout, data lives beside the code; an installed package writes to the user cache.
_IN_CHECKOUT = (ROOT / "pyproject.toml").is_file() and (ROOT / "gmval").is_dir()
_DEFAULT_DATA = ROOT / "data" if _IN_CHECKOUT else Path.home() / ".cache" / "gmval"
DATA = Path(os.environ.get("GMVAL_DATA", _DEFAULT_DATA)).resolve()
FIGURES = Path(os.environ.get("GMVAL_FIGURES", ROOT / "figures")).resolve()
RAW = DATA / "raw"
CACHE = DATA / "cache"
MODELS = DATA / "models"


def torch_home() -> Path:
    """Torch-hub cache root, honouring ``TORCH_HOME`` like torch itself."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(os.environ.get("TORCH_HOME", default))


def hf_home() -> Path:
    """Hugging Face cache root, honouring ``HF_HOME`` like huggingface_hub."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(os.environ.get("HF_HOME", default))
