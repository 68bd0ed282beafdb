"""Experiment statistics: user-level tests keep the A/A false-positive rate at 5%, and find real effects."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import ttest_ind

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression, Shown
from ltr.experiments.stats import (
    METRICS,
    ab_test,
    compute_stats,
    impression_metrics,
    interleaving_test,
    randomization_p,
    sessions_for_power,
    sessions_to_significance,
)
from ltr.experiments.store import Experiment, Variant
from tests.support.ab_synthetic import START, synthetic_impressions

A_A_EXPERIMENTS = 300


def _ab(exp_id: str = "exp", salt: str = "s", shares: tuple[float, float] = (0.5, 0.5)) -> Experiment:
    return Experiment(exp_id, "idx", "ab", (Variant("A", "hybrid", shares[0]), Variant("B", "model:m1", shares[1])),
                      salt=salt)


def _il(exp_id: str = "il") -> Experiment:
    return Experiment(exp_id, "idx", "interleave", (Variant("A", "hybrid"), Variant("B", "model:m1")), salt="s")


def _tolerance(n: int, rate: float = 0.05) -> float:
    """The largest false-positive rate a correct 5% test shows in n experiments, 99% of the time."""
    return float(scipy_stats.binom.ppf(0.99, n, rate)) / n


def test_impression_metrics_by_hand() -> None:
    t = START
    imp = Impression("r", t, "idx", "q", [Shown("x", 1, "A"), Shown("y", 2, "B"), Shown("z", 3, "B")],
                     clicks={"y": t, "z": t})
    m = impression_metrics(imp)
    assert m == {"ctr": 2.0, "clicks@1": 0.0, "clicks@3": 1.0, "clicks@10": 1.0, "abandonment": 0.0, "mrr": 0.5}
    assert impression_metrics(imp, "A")["ctr"] == 0.0
    assert impression_metrics(imp, "B")["mrr"] == 0.5
    none = Impression("r2", t, "idx", "q", [Shown("x", 1)])
    assert impression_metrics(none)["abandonment"] == 1.0 and impression_metrics(none)["mrr"] == 0.0


def test_aa_false_positive_rate_is_at_most_five_percent() -> None:
    """300 A/A experiments with heterogeneous users: the user-level test rejects ≤ 5% (+ binomial noise),
    while the naive per-search t-test on the same data rejects far more often (the clustering is real)."""
    rejected = naive_rejected = 0
    for k in range(A_A_EXPERIMENTS):
        exp = Experiment(f"aa{k}", "idx", "ab", (Variant("A", "hybrid"), Variant("B", "hybrid")), salt=f"salt{k}")
        imps = synthetic_impressions(exp, seed=k, users=100, mean_searches=10)
        p, diff = ab_test(imps, exp)
        assert math.isfinite(p) and diff.low <= diff.value <= diff.high
        rejected += p < 0.05
        per_search = {v: [impression_metrics(i)["ctr"] for i in imps if i.variant == v] for v in ("A", "B")}
        naive_rejected += ttest_ind(per_search["A"], per_search["B"], usevar="unequal")[1] < 0.05
    fpr = rejected / A_A_EXPERIMENTS
    print(f"A/A false-positive rate over {A_A_EXPERIMENTS} experiments: user-level {fpr:.3f}, "
          f"naive per-search {naive_rejected / A_A_EXPERIMENTS:.3f}")
    assert fpr <= _tolerance(A_A_EXPERIMENTS)
    assert naive_rejected / A_A_EXPERIMENTS > 0.2


def test_real_difference_is_detected_with_verdict_and_effect_size() -> None:
    exp = _ab()
    imps = synthetic_impressions(exp, seed=7, users=600, lift=0.5)
    st = compute_stats(imps, exp)
    ctr = next(c for c in st.comparisons if c.metric == "ctr")
    assert ctr.significant and ctr.p_value < 0.05
    assert 0 < ctr.diff.low < ctr.diff.value < ctr.diff.high
    assert ctr.relative.low < 0.5 < ctr.relative.high  # the true lift is inside the relative interval
    assert ctr.cohens_d > 0 and ctr.more_units_needed == 0
    assert st.verdict.startswith("B beats A on CTR by +")
    assert "p=" in st.verdict or "p<" in st.verdict
    abandon = next(c for c in st.comparisons if c.metric == "abandonment")
    assert abandon.diff.value < 0 and abandon.cohens_h is not None and abandon.cohens_h < 0


def test_no_difference_yet_says_how_many_more_users() -> None:
    exp = _ab()
    imps = synthetic_impressions(exp, seed=3, users=60, lift=0.15)
    st = compute_stats(imps, exp)
    ctr = next(c for c in st.comparisons if c.metric == "ctr")
    assert not ctr.significant
    assert ctr.units_needed is not None and ctr.more_units_needed is not None
    assert ctr.more_units_needed == ctr.units_needed - min(v.units for v in st.variants)
    assert "No significant difference on CTR" in st.verdict and "more users per variant needed" in st.verdict


def test_summary_per_variant_counts_and_intervals() -> None:
    exp = _ab()
    imps = synthetic_impressions(exp, seed=11, users=200)
    st = compute_stats(imps, exp)
    assert [v.name for v in st.variants] == ["A", "B"]
    assert sum(v.impressions for v in st.variants) == len(imps) == st.impressions
    assert sum(v.clicks for v in st.variants) == sum(len(i.clicks) for i in imps)
    assert sum(v.units for v in st.variants) == st.units == 200
    for v in st.variants:
        assert set(v.metrics) == set(METRICS)
        for iv in v.metrics.values():
            assert iv.low <= iv.value <= iv.high
        users = {i.user_id for i in imps if i.variant == v.name}
        per_user = [np.mean([impression_metrics(i)["ctr"] for i in imps if i.user_id == u]) for u in users]
        assert v.metrics["ctr"].value == pytest.approx(np.mean(per_user))
        assert v.metrics["abandonment"].value + v.metrics["clicks@10"].value == pytest.approx(1.0)
    json.dumps(st.to_json(), allow_nan=False)  # NaN/datetimes are made JSON-safe


def test_three_variants_are_each_compared_with_the_control_and_adjusted() -> None:
    exp = Experiment("three", "idx", "ab", (Variant("A", "hybrid", 0.4), Variant("B", "rrf", 0.3),
                                            Variant("C", "es", 0.3)), salt="x")
    st = compute_stats(synthetic_impressions(exp, seed=5, users=200), exp)
    ctr = [c for c in st.comparisons if c.metric == "ctr"]
    assert [(c.control, c.treatment) for c in ctr] == [("A", "B"), ("A", "C")]
    assert all(c.p_adjusted >= c.p_value for c in ctr)


def test_sample_ratio_mismatch_is_flagged() -> None:
    exp = _ab()
    imps = [i for i in synthetic_impressions(exp, seed=2, users=600)
            if i.variant == "A" or int(i.user_id.rsplit("-", 1)[1]) % 3 == 0]  # B loses 2/3 of its users
    st = compute_stats(imps, exp)
    assert st.srm_p is not None and st.srm_p < 0.001
    assert st.verdict.startswith("Sample-ratio mismatch")


def test_no_traffic_and_foreign_impressions() -> None:
    exp = _ab()
    with pytest.raises(DataError, match="no traffic yet"):
        compute_stats([], exp)
    other = synthetic_impressions(_ab("other"), seed=1, users=10)
    with pytest.raises(DataError, match="no traffic yet"):
        compute_stats(other, exp)
    mine = synthetic_impressions(exp, seed=1, users=30)
    mine[0].variant = "Z"
    st = compute_stats(mine + other, exp)
    assert st.impressions == len(mine) - 1 and st.ignored == 1 and st.notes


def test_ctr_series_has_a_point_per_bucket_and_variant() -> None:
    exp = _ab()
    imps = synthetic_impressions(exp, seed=4, users=150, hours=24 * 5)
    st = compute_stats(imps, exp)
    assert st.bucket == "day"
    days = {(i.timestamp - START) // timedelta(days=1) for i in imps}
    assert len(st.series) == 2 * len(days)
    assert sum(p.impressions for p in st.series) == len(imps)
    for p in st.series:
        assert p.ctr.low <= p.ctr.value <= p.ctr.high
    hourly = compute_stats(imps, exp, bucket="hour")
    assert hourly.bucket == "hour" and len(hourly.series) > len(st.series)


def test_interleaving_aa_false_positive_rate() -> None:
    rejected, n = 0, 200
    for k in range(n):
        exp = _il(f"ila{k}")
        il = interleaving_test(synthetic_impressions(exp, seed=1000 + k, users=25, mean_searches=6), exp)
        rejected += il.p_value < 0.05
    assert rejected / n <= _tolerance(n)


def test_interleaving_detects_the_better_ranker() -> None:
    exp = _il()
    imps = synthetic_impressions(exp, seed=9, users=150, lift=0.3)
    st = compute_stats(imps, exp)
    il = st.interleaving
    assert il is not None and il.significant
    assert il.wins_b > il.wins_a and il.outcomes == len(imps) == il.wins_a + il.wins_b + il.ties
    assert 0 < il.preference.low < il.preference.value < il.preference.high
    assert il.preference.value == pytest.approx((il.wins_b - il.wins_a) / il.outcomes)
    assert il.p_value == pytest.approx(scipy_stats.binomtest(il.wins_b, il.wins_a + il.wins_b).pvalue)
    assert st.verdict.startswith("B is preferred over A")
    assert [v.name for v in st.variants] == ["A", "B"] and st.variants[1].clicks > st.variants[0].clicks
    per_user = compute_stats(imps, exp, interleave_unit="user").interleaving
    assert per_user is not None and per_user.unit == "user" and per_user.outcomes == 150
    assert per_user.p_value > il.p_value  # fewer, independent outcomes: less evidence


def test_interleaving_without_decisive_clicks() -> None:
    exp = _il()
    imps = synthetic_impressions(exp, seed=1, users=5)
    for i in imps:
        i.clicks.clear()
    il = compute_stats(imps, exp).interleaving
    assert il is not None and il.ties == il.outcomes and not il.significant and math.isnan(il.p_value)
    assert "all ties" in il.verdict


def test_sessions_to_significance_interleaving_needs_fewer_than_ab() -> None:
    il_exp, ab_exp = _il(), _ab()
    il_imps = synthetic_impressions(il_exp, seed=21, users=300, lift=0.3)
    ab_imps = synthetic_impressions(ab_exp, seed=21, users=300, lift=0.3)
    n_il = sessions_to_significance(il_imps, il_exp)
    n_ab = sessions_to_significance(ab_imps, ab_exp)
    assert n_il is not None and n_il < len(il_imps)
    assert n_ab is None or n_il < n_ab
    # "stays significant": every later checkpoint is below alpha, the one before is not
    il = compute_stats(il_imps[:n_il], il_exp).interleaving
    assert il is not None and il.p_value < 0.05
    aa = synthetic_impressions(_ab("aa"), seed=1, users=10)
    assert sessions_to_significance(aa[:5], _ab("aa")) is None


def test_sessions_for_power_finds_where_the_bootstrap_power_crosses_the_target() -> None:
    il_exp, ab_exp = _il(), _ab()
    il_imps = synthetic_impressions(il_exp, seed=21, users=300, lift=0.3)
    ab_imps = synthetic_impressions(ab_exp, seed=21, users=300, lift=0.3)
    il = sessions_for_power(il_imps, il_exp, resamples=100)
    ab = sessions_for_power(ab_imps, ab_exp, resamples=100)
    assert il.direction == 1 and il.sessions is not None
    assert ab.sessions is None or il.sessions < ab.sessions  # interleaving is the more sensitive design
    # the answer is the first point of the evaluated curve at the target, and the point below misses it
    reached = [n for n, p in il.curve.items() if p >= 0.8]
    assert il.sessions == min(reached)
    assert all(p < 0.8 for n, p in il.curve.items() if n < il.sessions)
    # a null experiment never reaches 80% power
    aa_exp = _ab("aa")
    aa = sessions_for_power(synthetic_impressions(aa_exp, seed=3, users=60), aa_exp, resamples=50)
    assert aa.sessions is None and max(aa.curve.values()) < 0.5
    with pytest.raises(DataError, match="too little traffic"):
        sessions_for_power(synthetic_impressions(aa_exp, seed=3, users=2)[:1], aa_exp)


def test_interleaving_power_with_the_click_difference_t_test() -> None:
    il_exp = _il()
    il_imps = synthetic_impressions(il_exp, seed=21, users=300, lift=0.3)
    sign = sessions_for_power(il_imps, il_exp, resamples=100)
    credit = sessions_for_power(il_imps, il_exp, resamples=100, interleave_test="credit")
    assert credit.direction == sign.direction == 1 and credit.sessions is not None
    assert credit.curve != sign.curve  # another test on the same resamples
    reached = [n for n, p in credit.curve.items() if p >= 0.8]
    assert credit.sessions == min(reached)
    # a null interleaving (no lift for either team) never reaches 80% power with the t-test either
    null = synthetic_impressions(il_exp, seed=5, users=200, lift=0.0)
    assert sessions_for_power(null, il_exp, resamples=50, interleave_test="credit").sessions is None


def test_randomization_p_agrees_with_welch_on_normal_data_and_handles_degenerate_arms() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 1.0, 300), rng.normal(0.2, 1.5, 250)
    welch = scipy_stats.ttest_ind(b, a, equal_var=False).pvalue
    assert randomization_p(a, b) == pytest.approx(welch, abs=0.02)
    assert randomization_p(a, b) == randomization_p(a, b)  # seeded: the same data, the same p
    assert randomization_p(np.ones(4), np.ones(5)) == 1.0
    assert math.isnan(randomization_p(a[:1], b))
    # never 0: the smallest two-sided p with 2,000 re-assignments is 2 x 1/2,001 (scipy doubles the smaller tail)
    assert randomization_p(a, a + 10.0) == pytest.approx(2 / 2001)


def test_large_experiments_use_the_t_approximation() -> None:
    from ltr.experiments.stats import RANDOMIZATION_MAX_UNITS, _welch

    rng = np.random.default_rng(2)
    small_a, small_b = rng.exponential(1.0, 100), rng.exponential(1.3, 100)
    big = RANDOMIZATION_MAX_UNITS // 2 + 1
    big_a, big_b = rng.exponential(1.0, big), rng.exponential(1.01, big)
    small = _welch(small_a, small_b, alpha=0.05, permutations=500)
    large = _welch(big_a, big_b, alpha=0.05, permutations=500)
    assert small is not None and large is not None
    assert small.p_value == randomization_p(small_a, small_b, permutations=500)
    assert large.p_value == pytest.approx(scipy_stats.ttest_ind(big_b, big_a, equal_var=False).pvalue)


def test_randomization_draws_depend_on_the_data_not_on_a_fixed_seed() -> None:
    """Another bucketing of the same users gets its own re-assignments (a fixed seed would reuse one
    set of permutations for every experiment of that size, and its Monte Carlo error would not average
    out over experiments); the same data keeps its p-value."""
    from ltr.experiments.stats import _data_seed

    rng = np.random.default_rng(3)
    users = rng.poisson(2.0, 60).astype(float)
    first, second = users[:30], users[30:]
    assert _data_seed(first, second) == _data_seed(first.copy(), second.copy())
    assert _data_seed(first, second) != _data_seed(second, first)
    assert randomization_p(first, second) == randomization_p(first, second)
    assert randomization_p(first, second, seed=0) == randomization_p(first, second, seed=0)
