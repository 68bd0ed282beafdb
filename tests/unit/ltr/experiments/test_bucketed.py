"""Bucketed A/B: user-level tests keep the A/A false-positive rate at 5%, and find real effects."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import ttest_ind

from ltr.experiments.metrics import METRICS, impression_metrics
from ltr.experiments.randomization import randomization_p
from ltr.experiments.stats import ab_test, compute_stats
from ltr.experiments.store import Experiment, Variant
from tests.support.ab_synthetic import ab_experiment, false_positive_tolerance, synthetic_impressions

A_A_EXPERIMENTS = 300


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
    assert fpr <= false_positive_tolerance(A_A_EXPERIMENTS)
    assert naive_rejected / A_A_EXPERIMENTS > 0.2


def test_real_difference_is_detected_with_verdict_and_effect_size() -> None:
    exp = ab_experiment()
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
    exp = ab_experiment()
    imps = synthetic_impressions(exp, seed=3, users=60, lift=0.15)
    st = compute_stats(imps, exp)
    ctr = next(c for c in st.comparisons if c.metric == "ctr")
    assert not ctr.significant
    assert ctr.units_needed is not None and ctr.more_units_needed is not None
    assert ctr.more_units_needed == ctr.units_needed - min(v.units for v in st.variants)
    assert "No significant difference on CTR" in st.verdict and "more users per variant needed" in st.verdict


def test_summary_per_variant_counts_and_intervals() -> None:
    exp = ab_experiment()
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
    exp = ab_experiment()
    imps = [i for i in synthetic_impressions(exp, seed=2, users=600)
            if i.variant == "A" or int(i.user_id.rsplit("-", 1)[1]) % 3 == 0]  # B loses 2/3 of its users
    st = compute_stats(imps, exp)
    assert st.srm_p is not None and st.srm_p < 0.001
    assert st.verdict.startswith("Sample-ratio mismatch")


def test_large_experiments_use_the_t_approximation() -> None:
    from ltr.experiments.bucketed import _welch
    from ltr.experiments.randomization import RANDOMIZATION_MAX_UNITS

    rng = np.random.default_rng(2)
    small_a, small_b = rng.exponential(1.0, 100), rng.exponential(1.3, 100)
    big = RANDOMIZATION_MAX_UNITS // 2 + 1
    big_a, big_b = rng.exponential(1.0, big), rng.exponential(1.01, big)
    small = _welch(small_a, small_b, alpha=0.05, permutations=500)
    large = _welch(big_a, big_b, alpha=0.05, permutations=500)
    assert small is not None and large is not None
    assert small.p_value == randomization_p(small_a, small_b, permutations=500)
    assert large.p_value == pytest.approx(scipy_stats.ttest_ind(big_b, big_a, equal_var=False).pvalue)
