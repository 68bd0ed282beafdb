"""Team-draft multileaving: the merged list, the shared prefix, per-pair verdicts with Holm, the store."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from hybridrank.errors import ConfigError
from ltr.clicks.impressions import Impression, Shown
from ltr.experiments.stats import compute_stats
from ltr.experiments.store import Experiment, Variant
from ltr.experiments.team_draft import shared_prefix, team_draft, team_draft_multileave, team_label
from tests.support.ab_synthetic import EXAMINATION, START


def test_multileave_merges_every_ranking_fairly() -> None:
    rankings = [[f"{t}{k}" for k in range(10)] for t in "xyz"]
    firsts: Counter[str] = Counter()
    for seed in range(600):
        merged, teams = team_draft_multileave(rankings, seed=str(seed), length=10)
        assert len(merged) == len(set(merged)) == 10
        assert Counter(teams[:9]) == Counter({"A": 3, "B": 3, "C": 3})  # one pick per team and round
        for doc, team in zip(merged, teams, strict=True):
            assert doc[0] == "xyz"[ord(team) - ord("A")]
        firsts[teams[0]] += 1
    assert all(150 < firsts[t] < 250 for t in "ABC")  # a random team drafts first
    assert team_draft_multileave(rankings, seed="s", length=10) == team_draft_multileave(rankings, seed="s",
                                                                                          length=10)


def test_multileave_skips_taken_and_exhausted() -> None:
    merged, teams = team_draft_multileave([["a", "b"], ["a", "c"], ["a"]], seed="1")
    assert sorted(merged) == ["a", "b", "c"] and len(teams) == 3


def test_shared_prefix_and_labels() -> None:
    assert shared_prefix([["a", "b", "c"], ["a", "b", "d"]]) == 2
    assert shared_prefix([["a", "b"], ["a", "b"], ["b", "a"]]) == 0
    assert [team_label(i) for i in range(3)] == ["A", "B", "C"]
    with pytest.raises(ValueError):
        team_label(26)


def test_store_takes_more_variants_for_interleaving() -> None:
    exp = Experiment("ml", "idx", "interleave", tuple(Variant(n, r) for n, r in
                                                    (("bm25", "es"), ("linear", "hybrid"), ("rrf", "rrf"))), salt="s")
    assert Experiment.from_json(exp.to_json()) == exp
    with pytest.raises(ConfigError, match="at most 26"):
        Experiment("x", "idx", "interleave", tuple(Variant(f"v{i}", "es") for i in range(27)), salt="s")


def _multileave_traffic(exp: Experiment, attract: dict[str, float], searches: int, seed: int) -> list[Impression]:
    rng = np.random.default_rng(seed)
    rankings = [[f"{v.name}-{k}" for k in range(10)] for v in exp.variants]
    out = []
    for s in range(searches):
        rid = f"r{s}"
        docs, teams = team_draft_multileave(rankings, seed=rid, length=10)
        p = EXAMINATION * np.array([attract[d.split("-")[0]] for d in docs])
        ts = START + timedelta(seconds=s)
        clicked = {d: ts for d, c in zip(docs, rng.random(10) < p, strict=True) if c}
        out.append(Impression(rid, ts, "idx", f"q{s % 5}", [Shown(d, k + 1, t) for k, (d, t) in
                                                            enumerate(zip(docs, teams, strict=True))],
                              user_id=f"u{s % 50}", experiment=exp.id, clicks=clicked))
    return out


def test_multileave_orders_three_rankers_with_holm() -> None:
    exp = Experiment("ml", "idx", "interleave", (Variant("bad", "es"), Variant("mid", "hybrid"),
                                                 Variant("good", "model:m")), salt="s")
    imps = _multileave_traffic(exp, {"bad": 0.1, "mid": 0.35, "good": 0.7}, 1500, seed=3)
    st = compute_stats(imps, exp)
    assert st.interleaving is None and st.significant
    for method in ("multileave", "multileave_click_gap"):  # each Holm-adjusted over its own three pairs
        pairs = {(m.control, m.treatment): m for m in st.methods if m.method == method}
        assert set(pairs) == {("bad", "mid"), ("bad", "good"), ("mid", "good")}
        for m in pairs.values():
            assert m.significant and m.effect.value > 0 and m.p_adjusted >= m.p_value
            assert m.effect.low < m.effect.value < m.effect.high
    assert len(st.methods) == 6
    assert any("two-variant interleaving" in n for n in st.notes)
    assert "good is preferred over bad" in st.verdict
    assert [v.name for v in st.variants] == ["bad", "mid", "good"]
    assert st.variants[0].clicks < st.variants[1].clicks < st.variants[2].clicks


def test_equal_rankers_are_not_ordered() -> None:
    exp = Experiment("ml", "idx", "interleave", tuple(Variant(n, "es") for n in "xyz"), salt="s")
    st = compute_stats(_multileave_traffic(exp, dict.fromkeys("xyz", 0.4), 600, seed=5), exp)
    assert all(0 <= m.p_adjusted <= 1 for m in st.methods)
    assert "No pair" in st.verdict or st.significant  # a 5%-level test may reject; the verdict says which


def test_two_variant_interleaving_reports_every_credit_rule() -> None:
    exp = Experiment("il", "idx", "interleave", (Variant("A", "es"), Variant("B", "model:m")), salt="s")
    rng = np.random.default_rng(1)
    a, b = [f"d{k}" for k in range(10)], ["d0", "x1", *[f"d{k}" for k in range(1, 9)]]
    imps = []
    for s in range(800):
        docs, teams = team_draft(a, b, seed=f"r{s}", length=10)
        ts = START + timedelta(seconds=s)
        p = EXAMINATION * np.array([0.9 if d in ("d0", "x1") else 0.1 for d in docs])
        clicked = {d: ts for d, c in zip(docs, rng.random(10) < p, strict=True) if c}
        imps.append(Impression(f"r{s}", ts, "idx", "q", [Shown(d, k + 1, t, shared=k < 1) for k, (d, t) in
                                                        enumerate(zip(docs, teams, strict=True))],
                               user_id=f"u{s % 80}", experiment="il", clicks=clicked))
    st = compute_stats(imps, exp)
    by_method = {m.method: m for m in st.methods}
    assert set(by_method) == {"team_draft", "team_draft_skip_prefix", "team_draft_click_gap"}
    gap = by_method["team_draft_click_gap"]
    assert gap.significant and gap.effect.value > 0 and "unclicked" in gap.test
    plain, skip = by_method["team_draft"], by_method["team_draft_skip_prefix"]
    assert skip.significant and skip.effect.value > 0
    assert skip.p_value < plain.p_value  # the shared rank-1 document's coin-credited clicks were noise
    assert skip.sessions_needed is not None and plain.sessions_needed is not None
    assert skip.sessions_needed < plain.sessions_needed
    assert all(0 <= v <= 1 for v in skip.power_curve.values())
    headed = compute_stats(imps, exp, headline="team_draft_click_gap")
    assert headed.verdict == gap.verdict and headed.verdict.startswith("team_draft_click_gap: B is preferred")
    assert headed.significant and st.verdict == st.interleaving.verdict  # the sign test heads by default
