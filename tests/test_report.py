"""report.html: self-contained (checked in the file) and shown by a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmval.cli import main

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A `gmval value` run on small RGB folders of different sizes; the path of its report."""
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    for folder, n in (("train", 40), ("gen", 5)):
        (root / folder).mkdir()
        for i in range(n):
            h, w = (36, 48) if i % 2 else (40, 40)
            smooth = np.cumsum(np.cumsum(rng.normal(size=(h, w, 3)), axis=0), axis=1)
            Image.fromarray(np.clip(128 + 4 * smooth, 0, 255).astype(np.uint8)).save(root / folder / f"<p&{i:02d}>.png")
    out = root / "out"
    code = main(["value", "--train", str(root / "train"), "--generated", str(root / "gen"), "--out", str(out),
                 "--encoder", "pixels", "--encoder-arg", "resolution=8", "-k", "4", "--no-cache", "--quiet",
                 "--grid", "3"])
    assert code == 0
    return out / "report.html"


def test_report_is_self_contained_and_shows_everything(report: Path) -> None:
    page = report.read_text()
    # nothing is fetched: no external addresses, scripts, stylesheets or frames
    assert not re.search(r"(src|href)\s*=\s*[\"'](?!data:)", page)
    assert "<script" not in page and "<link" not in page and "<iframe" not in page
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # histogram + 12 top + the 28 other bottom ones capped at 12 + 3 rows of (1 generated + 4 contributors)
    assert len(uris) == 1 + 12 + 12 + 3 * 5
    for uri in uris:
        assert Image.open(io.BytesIO(base64.b64decode(uri))).format == "PNG"
    for text in ("Settings", "Stage timings", "embed_train", "Value distribution", "Most valuable",
                 "Least valuable", "top contributors", "pixels", "w 0."):
        assert text in page
    assert "&lt;p&amp;00&gt;.png" in page and "<p&00>.png" not in page  # file names are escaped


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="needs chromium and chromedriver")
def test_report_loads_in_headless_chromium_without_console_errors(report: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images)"
            ".map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width])")
        assert len(images) == 40
        assert all(done and natural > 0 and shown > 0 for done, natural, shown in images)
        assert driver.title == "gmval report"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        if os.environ.get("GMVAL_REPORT_SCREENSHOT"):  # to look at it
            driver.save_screenshot(os.environ["GMVAL_REPORT_SCREENSHOT"])
    finally:
        driver.quit()
