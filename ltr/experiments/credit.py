"""Interleaving credit rules: who won a search, from its clicks and each shown document's team.

Both the report (on logged impressions) and the offline sensitivity simulation (on arrays of many
sessions) count credit here, so a method means the same in both.

- ``team_draft`` (Radlinski et al. 2008): clicks on each team's documents; the search goes to the
  team with more; the sign test over decisive searches.
- ``team_draft_skip_prefix``: the same, but clicks inside the rankers' *shared prefix* — the top
  ranks where both rankings hold the same documents in the same order — are not counted. Such a
  document is drafted by whichever team the coin sends first, so its click credits a team at random:
  pure noise, with expectation zero for any user who reads top-down (whose clicks at a rank depend
  on nothing below it: the cascade and position-based users). Skipping it leaves the expected
  preference unchanged and removes that noise; the test is the t-test of each search's click
  difference (B − A), which also keeps by how many clicks a team won.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

CreditRule = Literal["team_draft", "team_draft_skip_prefix"]
CREDIT_RULES: tuple[CreditRule, ...] = ("team_draft", "team_draft_skip_prefix")


def click_difference(clicks: np.ndarray, teams: np.ndarray, counted: np.ndarray | None = None) -> np.ndarray:
    """Per search (row): clicks on team B's documents minus clicks on team A's (teams 0 = A, 1 = B),
    over the ranks ``counted`` (all when None)."""
    hit = clicks if counted is None else clicks & counted
    return (hit & (teams == 1)).sum(axis=-1).astype(float) - (hit & (teams == 0)).sum(axis=-1)


def sign_test_p(outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided sign-test p, B wins − A wins) of each row of per-search differences (the exact
    binomial test at 1/2 over decisive searches, vectorised: p = min(1, 2·P(X ≤ min(wins))))."""
    from scipy import stats

    wins_b = (outcomes > 0).sum(axis=-1)
    wins_a = (outcomes < 0).sum(axis=-1)
    decisive = wins_a + wins_b
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(wins_a, wins_b), np.maximum(decisive, 1), 0.5))
    return np.where(decisive > 0, p, 1.0), (wins_b - wins_a).astype(float)


def mean_test_p(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided one-sample t-test p of mean 0, mean) of each row of per-search click differences;
    p = 1 where a row has no variation."""
    from scipy import stats

    n = differences.shape[-1]
    mean = differences.mean(axis=-1)
    sd = differences.std(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / (sd / np.sqrt(n))
    p = 2 * stats.t.sf(np.abs(t), n - 1)
    return np.where(sd > 0, p, 1.0), mean


def credit_test(rule: CreditRule, clicks: np.ndarray, teams: np.ndarray,
                shared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, signed effect: > 0 favours B) of ``rule`` on rows of searches (…, searches, ranks)."""
    if rule == "team_draft":
        return sign_test_p(np.sign(click_difference(clicks, teams)))
    return mean_test_p(click_difference(clicks, teams, ~shared))
