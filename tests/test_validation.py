"""Bad parameters and scores are refused with a message naming them; library noise is filtered narrowly."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gmval.cli import main
from gmval.valuator import Valuator
from gmval.value import contributions


@pytest.mark.parametrize("kwargs, name", [({"k": 0}, "k"), ({"k": -3}, "k"), ({"k": 2.5}, "k"), ({"k": True}, "k"),
                                          ({"recall_k": 0}, "recall_k"), ({"chunk_size": 0}, "chunk_size"),
                                          ({"chunk_size": 1.5}, "chunk_size")])
def test_sizes_are_validated_by_name(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a whole number >= 1, got {kwargs[name]!r}"):
        Valuator("pixels", cache_dir=None, progress=False, **kwargs)


def test_k_of_one_call_is_validated(split) -> None:
    train, gen = split
    v = Valuator("pixels", k=5, cache_dir=None, progress=False).fit(train.subset(range(200)))
    with pytest.raises(ValueError, match="^k must be a whole number >= 1, got 0"):
        v.value(gen.subset(range(3)), k=0)
    assert len(v.value(gen.subset(range(3)), k=2).contributors) == 6


def test_cli_reports_k_zero(tmp_path, capsys) -> None:
    from PIL import Image

    for name in ("train", "gen"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    code = main(["value", "--train", str(tmp_path / "train"), "--generated", str(tmp_path / "gen"),
                 "--out", str(tmp_path / "o"), "--encoder", "pixels", "-k", "0", "--no-cache", "--quiet"])
    assert code == 2 and "k must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_nan_quality_is_rejected() -> None:
    d = np.array([[0.1, 0.2], [0.3, 0.1], [0.2, 0.2]])
    np.testing.assert_allclose(contributions(d, np.array([1.0, 0.5, 0.0])).sum(axis=1), [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"quality has 2 NaN or infinite scores \(generated rows \[0, 2\]\)"):
        contributions(d, np.array([np.nan, 0.5, np.inf]))


def test_bitsandbytes_hub_kernel_notice_is_dropped_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you "
                       "already `pip install kernels` and the kernels >= 0.11.1", "offline")
        logger.warning("a real bitsandbytes problem")
        logging.getLogger("other").warning("Failed to load CPU gemm_4bit_forward from kernels-community: x")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("bitsandbytes.backends.cpu.ops", "a real bitsandbytes problem"),
        ("other", "Failed to load CPU gemm_4bit_forward from kernels-community: x")]
