"""Interleaving credit rules: who won a search, from its clicks and each shown document's team.

Both the report (on logged impressions) and the offline sensitivity simulation (on arrays of many
sessions) count credit here, so a method means the same in both.

- ``team_draft`` (Radlinski et al. 2008): clicks on each team's documents; the search goes to the
  team with more; the sign test (mid-p, ``sign_test_counts``) over decisive searches.
- ``team_draft_skip_prefix``: the same, but clicks inside the rankers' *shared prefix* — the top
  ranks where both rankings hold the same documents in the same order — are not counted. Such a
  document is drafted by whichever team the coin sends first, so its click credits a team at random:
  pure noise, with expectation zero for any user who reads top-down (whose clicks at a rank depend
  on nothing below it: the cascade and position-based users). Skipping it leaves the expected
  preference unchanged and removes that noise; the test is the t-test of each search's click
  difference (B − A), which also keeps by how many clicks a team won.
- ``team_draft_click_gap``: skip-prefix credit where each click counts ``1 +`` the shown results
  below it that the user left unclicked before the next click (or the end of the list). A click
  after which the user clicks nothing more for a while is more often a satisfying, relevant one
  (the "last click" evidence of Joachims et al., SIGIR 2005; the satisfied click of Fox et al.,
  TOIS 2005), while a click followed at once by another is often a look at a poor result — the noise
  that drowns plain click counting for users who click much (informational users, Hofmann et al.
  2011). The weight reads only the click pattern and the ranks, never the teams, so for equally good
  rankers each click still credits either team with equal chance and the expected difference stays
  zero (the A/A rate of ``ltr.experiments.sensitivity`` checks it); the test is again the t-test of
  each search's weighted difference. No parameter is fitted: the rule was chosen among a few
  weightings (last click only, √(1 + gap), (1 + gap)², sign of the difference) by their estimated
  sessions for 80% power on SciFact's three ranker pairs (docs/feedback-loop.md). With three or more
  rankers (multileaving) no credit rule is unbiased here: rankers that share documents split them in
  the draft, whatever the clicks (``ltr.experiments.methods``; docs/feedback-loop.md).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

CreditRule = Literal["team_draft", "team_draft_skip_prefix", "team_draft_click_gap"]
CREDIT_RULES: tuple[CreditRule, ...] = ("team_draft", "team_draft_skip_prefix", "team_draft_click_gap")
HEADLINE_RULE: CreditRule = "team_draft_click_gap"  # the demo's headline verdict: the most sensitive rule measured


def click_difference(clicks: np.ndarray, teams: np.ndarray, counted: np.ndarray | None = None,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Per search (row): clicks on team B's documents minus clicks on team A's (teams 0 = A, 1 = B),
    over the ranks ``counted`` (all when None), each click counted ``weights`` times (once when None)."""
    hit = clicks if counted is None else clicks & counted
    w = np.ones(hit.shape) if weights is None else weights
    return (w * (hit & (teams == 1))).sum(axis=-1) - (w * (hit & (teams == 0))).sum(axis=-1)


def click_gap_weights(clicks: np.ndarray, teams: np.ndarray) -> np.ndarray:
    """Per click: 1 + the shown results (team ≥ 0; −1 pads a shorter list) below it left unclicked before
    the next click or the end of the list; 0 where there is no click. Reads no team beyond "shown"."""
    shown = teams >= 0
    weights = np.zeros(clicks.shape)
    passed = np.zeros(clicks.shape[:-1])  # unclicked shown results below the current rank, up to the next click
    for rank in range(clicks.shape[-1] - 1, -1, -1):
        hit = clicks[..., rank]
        weights[..., rank] = np.where(hit, 1.0 + passed, 0.0)
        passed = np.where(hit, 0.0, passed + shown[..., rank])
    return weights


def sign_test_counts(wins_a: np.ndarray | int, wins_b: np.ndarray | int) -> np.ndarray:
    """Two-sided mid-p sign test of B-wins vs A-wins (elementwise; p = 1 with no decisive search).

    The exact binomial test at 1/2 is conservative: over a few hundred decisive searches its
    discrete distribution cannot reach 5%, so team-draft's A/A rate was .039-.044 in
    ``bench/results/sensitivity.json`` (outside 5%'s interval over 2,000 runs) and its power lower
    than the level allows. The mid-p value (Lancaster 1961; Agresti, *Categorical Data Analysis*,
    1.4.5) counts only half the probability of the observed count: p = 2·(P(X < k) + ½·P(X = k)),
    k = min(wins), capped at 1 — a level close to the nominal one in repeated use."""
    from scipy import stats

    a, b = np.asarray(wins_a), np.asarray(wins_b)
    n = a + b
    k = np.minimum(a, b)
    safe = np.maximum(n, 1)
    mid = stats.binom.cdf(k - 1, safe, 0.5) + 0.5 * stats.binom.pmf(k, safe, 0.5)
    return np.where(n > 0, np.minimum(1.0, 2 * mid), 1.0)


def sign_test_p(outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided mid-p sign-test p (``sign_test_counts``), B wins − A wins) of each row of per-search
    differences, over its decisive searches."""
    wins_b = (outcomes > 0).sum(axis=-1)
    wins_a = (outcomes < 0).sum(axis=-1)
    return sign_test_counts(wins_a, wins_b), (wins_b - wins_a).astype(float)


def mean_test_p(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided one-sample t-test p of mean 0, mean) of each row of per-search click differences
    (``scipy.stats.ttest_1samp`` along the last axis); p = 1 where a row has no variation."""
    from scipy import stats

    sd = differences.std(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = stats.ttest_1samp(differences, 0.0, axis=-1).pvalue
    return np.where(sd > 0, p, 1.0), differences.mean(axis=-1)


def credit_test(rule: CreditRule, clicks: np.ndarray, teams: np.ndarray,
                shared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, signed effect: > 0 favours B) of ``rule`` on rows of searches (…, searches, ranks)."""
    diff = credit_difference(rule, clicks, teams, shared)
    return sign_test_p(diff) if rule == "team_draft" else mean_test_p(diff)


def credit_difference(rule: CreditRule, clicks: np.ndarray, teams: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """Each search's credit of team B minus team A under ``rule`` (``team_draft``: the winner's sign)."""
    if rule == "team_draft":
        return np.sign(click_difference(clicks, teams))
    weights = click_gap_weights(clicks, teams) if rule == "team_draft_click_gap" else None
    return click_difference(clicks, teams, ~shared, weights)
