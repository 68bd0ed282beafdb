"""Interleaving: the sign test holds its level on A/A traffic and finds the better ranker."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from ltr.experiments.stats import compute_stats, interleaving_test
from tests.support.ab_synthetic import false_positive_tolerance, interleave_experiment, synthetic_impressions


def test_interleaving_aa_false_positive_rate() -> None:
    rejected, n = 0, 200
    for k in range(n):
        exp = interleave_experiment(f"ila{k}")
        il = interleaving_test(synthetic_impressions(exp, seed=1000 + k, users=25, mean_searches=6), exp)
        rejected += il.p_value < 0.05
    assert rejected / n <= false_positive_tolerance(n)


def test_interleaving_detects_the_better_ranker() -> None:
    exp = interleave_experiment()
    imps = synthetic_impressions(exp, seed=9, users=150, lift=0.3)
    st = compute_stats(imps, exp)
    il = st.interleaving
    assert il is not None and il.significant
    assert il.wins_b > il.wins_a and il.outcomes == len(imps) == il.wins_a + il.wins_b + il.ties
    assert 0 < il.preference.low < il.preference.value < il.preference.high
    assert il.preference.value == pytest.approx((il.wins_b - il.wins_a) / il.outcomes)
    exact = scipy_stats.binomtest(il.wins_b, il.wins_a + il.wins_b).pvalue  # mid-p: half the observed count's mass
    half = scipy_stats.binom.pmf(min(il.wins_a, il.wins_b), il.wins_a + il.wins_b, 0.5)
    assert il.p_value == pytest.approx(exact - half) and il.p_value < exact
    assert st.verdict.startswith("B is preferred over A")
    assert [v.name for v in st.variants] == ["A", "B"] and st.variants[1].clicks > st.variants[0].clicks
    per_user = compute_stats(imps, exp, interleave_unit="user").interleaving
    assert per_user is not None and per_user.unit == "user" and per_user.outcomes == 150
    assert per_user.p_value > il.p_value  # fewer, independent outcomes: less evidence


def test_interleaving_without_decisive_clicks() -> None:
    exp = interleave_experiment()
    imps = synthetic_impressions(exp, seed=1, users=5)
    for i in imps:
        i.clicks.clear()
    il = compute_stats(imps, exp).interleaving
    assert il is not None and il.ties == il.outcomes and not il.significant and math.isnan(il.p_value)
    assert "all ties" in il.verdict
