"""The HTML report: self-contained, every plot present with a stable id, the numbers embedded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ltr.experiments.report import render_report
from ltr.experiments.stats import compute_stats
from ltr.experiments.store import Experiment, Variant
from tests.support.ab_synthetic import synthetic_impressions


def _figure(html: str, fig_id: str) -> str:
    match = re.search(rf'<figure id="{fig_id}">(.*?)</figure>', html, re.S)
    assert match, f"figure {fig_id} missing"
    return match.group(1)


def test_ab_report_is_self_contained_with_plots(tmp_path: Path) -> None:
    exp = Experiment("exp-1", "idx", "ab", (Variant("A", "hybrid"), Variant("B", "model:m1")), salt="s",
                     description="learned model vs hybrid")
    st = compute_stats(synthetic_impressions(exp, seed=7, users=300, lift=0.5), exp)
    out = render_report(st, tmp_path / "sub" / "report.html")
    html = out.read_text(encoding="utf-8")
    assert out.parent.name == "sub" and html.startswith("<!DOCTYPE html>")
    for fig_id in ("ctr-over-time", "effects"):
        body = _figure(html, fig_id)
        assert "<svg" in body and body.count("<path") > 5
    assert 'id="summary"' in html and 'id="comparisons"' in html and 'id="p-values"' in html
    assert st.verdict.split(",")[0] in html.replace("&#x27;", "'")
    assert "learned model vs hybrid" in html
    # no network: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<link" not in html and "@import" not in html
    data = json.loads(re.search(r'<script type="application/json" id="stats-json">(.*?)</script>', html, re.S)
                      .group(1))  # type: ignore[union-attr]
    assert data["experiment"]["id"] == "exp-1" and data["verdict"] == st.verdict
    assert data["variants"][1]["metrics"]["ctr"]["value"] == st.variants[1].metrics["ctr"].value


def test_interleaving_report_has_outcome_bars(tmp_path: Path) -> None:
    exp = Experiment("il-1", "idx", "interleave", (Variant("A", "hybrid"), Variant("B", "rrf")), salt="s")
    st = compute_stats(synthetic_impressions(exp, seed=3, users=80, lift=0.3), exp)
    html = render_report(st, tmp_path / "il.html").read_text(encoding="utf-8")
    bars = _figure(html, "interleaving-outcomes")
    assert "<svg" in bars and "effects" not in html.split('id="interleaving-outcomes"')[0].split("<h2>Plots")[1]
    assert st.interleaving is not None
    assert f"{st.interleaving.wins_b:,}" in html and 'id="interleaving"' in html
    assert "<svg" in _figure(html, "ctr-over-time")
    # every method's verdict, interval and searches still needed, and power against searches per method
    methods = re.search(r'<table id="methods">(.*?)</table>', html, re.S)
    assert methods is not None and "team_draft_skip_prefix" in methods.group(1)
    assert "team_draft_click_gap" in methods.group(1)
    assert all(f"{m.searches:,}" in methods.group(1) for m in st.methods)
    curves = _figure(html, "power-curves")
    assert "<svg" in curves and curves.count("<path") > 5


def test_multileaving_report_has_a_row_per_pair(tmp_path: Path) -> None:
    from tests.unit.ltr.experiments.test_multileaving import _multileave_traffic

    exp = Experiment("ml", "idx", "interleave", (Variant("x", "es"), Variant("y", "hybrid"), Variant("z", "rrf")),
                     salt="s")
    st = compute_stats(_multileave_traffic(exp, {"x": 0.2, "y": 0.4, "z": 0.6}, 400, seed=2), exp)
    html = render_report(st, tmp_path / "ml.html").read_text(encoding="utf-8")
    assert "multileaving of 3 variants" in html and html.count("<td>multileave</td>") == 3
    assert html.count("<td>multileave_click_gap</td>") == 3
    assert "<svg" in _figure(html, "power-curves")
