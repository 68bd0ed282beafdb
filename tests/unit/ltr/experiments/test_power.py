"""Planning: interleaving needs fewer searches than A/B, and the power search stops where the curve crosses."""

from __future__ import annotations

import pytest

from hybridrank.errors import DataError
from ltr.experiments.power import sessions_for_power, sessions_to_significance
from ltr.experiments.stats import compute_stats
from tests.support.ab_synthetic import ab_experiment, interleave_experiment, synthetic_impressions


def test_sessions_to_significance_interleaving_needs_fewer_than_ab() -> None:
    il_exp, ab_exp = interleave_experiment(), ab_experiment()
    il_imps = synthetic_impressions(il_exp, seed=21, users=300, lift=0.3)
    ab_imps = synthetic_impressions(ab_exp, seed=21, users=300, lift=0.3)
    n_il = sessions_to_significance(il_imps, il_exp)
    n_ab = sessions_to_significance(ab_imps, ab_exp)
    assert n_il is not None and n_il < len(il_imps)
    assert n_ab is None or n_il < n_ab
    # "stays significant": every later checkpoint is below alpha, the one before is not
    il = compute_stats(il_imps[:n_il], il_exp).interleaving
    assert il is not None and il.p_value < 0.05
    aa = synthetic_impressions(ab_experiment("aa"), seed=1, users=10)
    assert sessions_to_significance(aa[:5], ab_experiment("aa")) is None


def test_sessions_for_power_finds_where_the_bootstrap_power_crosses_the_target() -> None:
    il_exp, ab_exp = interleave_experiment(), ab_experiment()
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
    aa_exp = ab_experiment("aa")
    aa = sessions_for_power(synthetic_impressions(aa_exp, seed=3, users=60), aa_exp, resamples=50)
    assert aa.sessions is None and max(aa.curve.values()) < 0.5
    with pytest.raises(DataError, match="too little traffic"):
        sessions_for_power(synthetic_impressions(aa_exp, seed=3, users=2)[:1], aa_exp)


def test_interleaving_power_with_the_click_difference_t_test() -> None:
    il_exp = interleave_experiment()
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
