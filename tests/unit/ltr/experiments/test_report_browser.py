"""The report renders in a real browser: headless Chromium loads it from disk and draws the plots.

Chromium is installed by scripts/bootstrap.sh; if it is missing this test fails (never skips).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ltr.experiments.report import render_report
from ltr.experiments.stats import compute_stats
from ltr.experiments.store import Experiment, Variant
from tests.support.ab_synthetic import synthetic_impressions

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-extensions", "--disable-background-networking"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("Chromium is not installed: run scripts/bootstrap.sh (apt-get install chromium)")


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    exp = Experiment("browser-1", "idx", "interleave", (Variant("A", "hybrid"), Variant("B", "model:m1")),
                     salt="s")
    st = compute_stats(synthetic_impressions(exp, seed=5, users=60, lift=0.3), exp)
    report = render_report(st, tmp_path / "report.html")
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    # the parsed DOM (after the browser's HTML parser) still holds each figure with its drawn SVG
    for fig_id in ("ctr-over-time", "interleaving-outcomes"):
        match = re.search(rf'<figure id="{fig_id}">(.*?)</figure>', dom, re.S)
        assert match, f"{fig_id} not in the rendered DOM"
        svg = match.group(1)
        assert "<svg" in svg and len(re.findall(r"<path\b", svg)) > 5
    assert 'id="verdict"' in dom and "B is preferred over A" in dom

    shot = tmp_path / "shot.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,2400", report.as_uri()], capture_output=True, timeout=180, check=True)
    from matplotlib.image import imread

    pixels = np.asarray(imread(shot))[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    non_white = (pixels < 0.9).any(axis=2).mean()
    assert non_white > 0.02, f"screenshot is (nearly) blank: {non_white:.4f} non-white"
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # plot colours, text, bands
