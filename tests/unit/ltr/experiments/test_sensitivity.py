"""The offline sensitivity simulation: enumerated interleavings, null pairs, power and A/A rates."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.clicks.user_models import make_click_model
from ltr.experiments.credit import click_difference, mean_test_p, sign_test_p
from ltr.experiments.interleaved_lists import interleavings, null_pair
from ltr.experiments.sensitivity import Arena, aa_rate, method_pvalues, power, sessions_for_power
from ltr.experiments.simulation import RankedLists


def _arena(model: str = "navigational") -> Arena:
    """40 queries, one relevant document each: both rankers put it first (a shared rank 1) except in every
    fourth query, where the control has it at rank 4."""
    rng = np.random.default_rng(0)
    lists_a, lists_b, levels = [], [], []
    for q in range(40):
        docs = [f"{q}-{k}" for k in range(12)]
        lists_b.append(docs[:10])
        lists_a.append([*docs[1:4], docs[0], *docs[4:10]] if q % 4 == 0 else docs[:10])
        levels.append({docs[0]: 4})
    ranked = RankedLists(tuple(map(str, range(40))), {"a": lists_a, "b": lists_b},
                         {str(q): lv for q, lv in enumerate(levels)})
    nulls = [null_pair(a, lv, rng) for a, lv in zip(lists_a, levels, strict=True)]
    return Arena(ranked.level_matrix("a"), ranked.level_matrix("b"), interleavings(lists_a, lists_b, levels),
                 interleavings(lists_a, nulls, levels), make_click_model(model))


def test_interleavings_enumerate_every_coin_sequence() -> None:
    il = interleavings([["x", "y", "z", "w"]], [["x", "z", "y", "v"]], [{"z": 4}], depth=4)
    assert il.levels.shape == (1, 4, 4) and il.shared.tolist() == [[True, False, False, False]]
    # rank 1 (x) goes to whichever team drafts first: A in half the sequences
    assert sorted(il.teams[0, :, 0].tolist()) == [0, 0, 1, 1]
    assert set(il.levels[0, :, 1].tolist()) == {0, 4}  # A first: x then B's z; B first: x then A's y


def test_null_pair_swaps_only_equal_levels() -> None:
    ranking = [f"d{k}" for k in range(10)]
    judged = {"d2": 4, "d7": 4, "d5": 2}
    swapped = null_pair(ranking, judged, np.random.default_rng(1))
    assert sorted(swapped) == sorted(ranking) and swapped != ranking
    assert [judged.get(d, 0) for d in swapped] == [judged.get(d, 0) for d in ranking]


def test_credit_tests() -> None:
    clicks = np.array([[True, False], [False, True], [True, True]])
    teams = np.array([[0, 1], [0, 1], [1, 0]])
    assert click_difference(clicks, teams).tolist() == [-1.0, 1.0, 0.0]
    assert click_difference(clicks, teams, np.array([[False, True]] * 3)).tolist() == [0.0, 1.0, -1.0]
    p, wins = sign_test_p(np.array([[1, 1, 1, 1, 1, 1, 1, -1]]))
    assert wins[0] == 6 and p[0] == pytest.approx(0.0390625)  # mid-p: 2·(P(X=0) + ½·P(X=1)), n = 8
    p, mean = mean_test_p(np.zeros((1, 5)))
    assert p[0] == 1.0 and mean[0] == 0.0


@pytest.mark.parametrize("method", ["ab", "ab_cuped", "team_draft", "team_draft_skip_prefix", "team_draft_click_gap"])
def test_null_experiments_hold_their_level(method: str) -> None:
    rate = aa_rate(method_pvalues(_arena(), method, null=True), 200, runs=400)
    assert rate <= 0.09  # a 5% test: 99% binomial bound of 400 runs is ~.078


def test_skipping_the_shared_prefix_needs_fewer_searches() -> None:
    arena = _arena()
    plain, _ = sessions_for_power(method_pvalues(arena, "team_draft"), replicates=150)
    skip, curve = sessions_for_power(method_pvalues(arena, "team_draft_skip_prefix"), replicates=150)
    assert plain is not None and skip is not None and skip < plain
    assert all(0 <= v <= 1 for v in curve.values())
    assert power(method_pvalues(arena, "ab"), 40, replicates=100, rng=np.random.default_rng(0)) < 0.8
