"""The randomisation test: agrees with Welch on normal data, handles degenerate arms, seeds from the data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ltr.experiments.randomization import randomization_p


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


def test_randomization_draws_depend_on_the_data_not_on_a_fixed_seed() -> None:
    """Another bucketing of the same users gets its own re-assignments (a fixed seed would reuse one
    set of permutations for every experiment of that size, and its Monte Carlo error would not average
    out over experiments); the same data keeps its p-value."""
    from ltr.experiments.randomization import _data_seed

    rng = np.random.default_rng(3)
    users = rng.poisson(2.0, 60).astype(float)
    first, second = users[:30], users[30:]
    assert _data_seed(first, second) == _data_seed(first.copy(), second.copy())
    assert _data_seed(first, second) != _data_seed(second, first)
    assert randomization_p(first, second) == randomization_p(first, second)
    assert randomization_p(first, second, seed=0) == randomization_p(first, second, seed=0)
