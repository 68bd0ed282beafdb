"""Credit rules on arrays of searches: the click-gap weights, their A/A level, and their power."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.clicks.user_models import make_click_model
from ltr.experiments.credit import click_gap_weights, credit_difference, credit_test, sign_test_counts, sign_test_p


def test_a_click_counts_the_unclicked_results_below_it() -> None:
    clicks = np.array([[True, False, False, True, False],
                       [False, True, False, False, False],
                       [True, True, False, False, False]])
    teams = np.array([[0, 1, 0, 1, 0],
                      [0, 1, 0, 1, -1],  # the last rank pads a four-result list
                      [1, 0, 1, 0, 1]])
    assert click_gap_weights(clicks, teams).tolist() == [[3, 0, 0, 2, 0], [0, 3, 0, 0, 0], [1, 4, 0, 0, 0]]
    shared = np.array([[True, False, False, False, False]] * 3)
    # row 1: A's rank-1 click is in the shared prefix (not counted), B's rank-4 click counts 2
    assert credit_difference("team_draft_click_gap", clicks, teams, shared).tolist() == [2.0, 3.0, -4.0]
    assert credit_difference("team_draft_skip_prefix", clicks, teams, shared).tolist() == [1.0, 1.0, -1.0]


def _searches(rng: np.random.Generator, experiments: int, n: int, rel_a: float,
              rel_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Informational users' clicks on interleaved top-10 lists: each round of two ranks holds one document
    of each team in a random order; a team's document is relevant (level 4) with probability rel_team."""
    first_b = rng.random((experiments, n, 5)) < 0.5
    teams = np.stack([first_b, ~first_b], axis=-1).reshape(experiments, n, 10).astype(np.int64)
    rel = rng.random((experiments, n, 10)) < np.where(teams == 1, rel_b, rel_a)
    levels = np.where(rel, 4, 0).reshape(-1, 10)
    clicks = make_click_model("informational").click_matrix(levels, rng).reshape(experiments, n, 10)
    return clicks, teams, np.zeros((experiments, n, 10), dtype=bool)


def test_equally_good_rankers_are_rejected_at_the_tests_level() -> None:
    clicks, teams, shared = _searches(np.random.default_rng(17), 1000, 200, 0.2, 0.2)
    p, effect = credit_test("team_draft_click_gap", clicks, teams, shared)
    rate = float(np.mean(p < 0.05))
    assert 0.03 <= rate <= 0.07  # 5%: the 99% binomial interval over 1,000 experiments is ~.033-.069
    assert abs(float(np.mean(effect))) < 0.05


def test_the_better_ranker_is_found_with_fewer_searches_than_team_draft() -> None:
    clicks, teams, shared = _searches(np.random.default_rng(3), 300, 300, 0.15, 0.25)
    p_gap, effect_gap = credit_test("team_draft_click_gap", clicks, teams, shared)
    p_td, _ = credit_test("team_draft", clicks, teams, shared)
    power_gap = float(np.mean((p_gap < 0.05) & (effect_gap > 0)))
    power_td = float(np.mean(p_td < 0.05))
    assert np.mean(effect_gap > 0) > 0.95  # the better ranker's team gets the credit
    assert power_gap > power_td + 0.05


def test_the_mid_p_sign_test_holds_its_level_where_the_exact_one_stays_below_it() -> None:
    """A/A: 20,000 experiments of 200-400 decisive searches (as many as a demo-sized experiment has),
    each won by either team at 1/2. The exact binomial test rejects under 5% (its discrete distribution
    reaches between 3.5% and 5% depending on n); the mid-p test used by team-draft rejects close to 5%."""
    from scipy import stats

    rng = np.random.default_rng(3)
    runs = 20_000
    n = rng.integers(200, 401, size=runs)
    wins_b = rng.binomial(n, 0.5)
    mid = sign_test_counts(n - wins_b, wins_b)
    exact = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(wins_b, n - wins_b), n, 0.5))
    low, high = stats.binomtest(round(0.05 * runs), runs).proportion_ci()  # 5%'s 95% interval, ±0.3%
    assert low <= float(np.mean(mid < 0.05)) <= high
    assert float(np.mean(exact < 0.05)) < low
    assert float(sign_test_counts(7, 7)) == pytest.approx(1.0) and sign_test_counts(0, 0) == 1.0
    signs = np.array([[1, 1, -1, 0, 1, 1]])  # B wins 4, A wins 1, one tie
    p, effect = sign_test_p(signs)
    assert effect.tolist() == [3.0] and p[0] == sign_test_counts(1, 4) < 1.0
