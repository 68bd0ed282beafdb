"""Every method's verdict on an interleaving experiment: per credit rule (two variants) or per pair (more).

Two variants: ``team_draft`` (sign test over decisive searches), ``team_draft_skip_prefix`` (t-test
of each search's click difference, clicks in the rankings' shared prefix not counted) and
``team_draft_click_gap`` (the same, each click weighted by the results the user left unclicked
after it) — the credit rules of ``ltr.experiments.credit``, the same code the sensitivity bench
measured.

More variants (team-draft multileaving, Schuth et al. 2014): every pair (i, j) is compared on the
searches' clicks on i's and j's documents, each search won by the team with more (``multileave``,
the sign test), and by the click-gap credit of i's and j's documents outside the shared prefix
(``multileave_click_gap``, the t-test; each click's weight read from the whole list's clicks); each
method's p-values are Holm-adjusted over the pairs (statsmodels ``multipletests``). Neither is
calibrated when a variant shares documents with another more than its rival does: the shared ones
go to whoever drafts first, so equally good rankers are not credited equally (measured in
docs/feedback-loop.md); the report's note asks for a two-variant experiment to confirm a pair.

Each verdict carries its interval, the searches needed for the power asked for at the observed
effect (statsmodels power solvers), and the power curve the report plots.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from ltr.clicks.impressions import Impression
from ltr.experiments.credit import (
    CreditRule,
    click_difference,
    click_gap_weights,
    credit_difference,
    credit_test,
    mean_test_p,
    sign_test_p,
)
from ltr.experiments.results import Interval, MethodVerdict, fmt_p, fmt_signed
from ltr.experiments.store import Experiment
from ltr.experiments.team_draft import team_label

CURVE_POINTS = 40
T_TESTED_RULES: dict[CreditRule, str] = {  # the credit rules tested by the t-test of each search's difference
    "team_draft_skip_prefix": "t-test of each search's click difference (B − A), clicks in the rankings' shared "
                              "prefix not counted",
    "team_draft_click_gap": "t-test of each search's click difference (B − A), each click outside the shared "
                            "prefix counted 1 + the results left unclicked below it before the next click",
}
PowerAt = Callable[[int], float]  # searches -> power


def search_arrays(imps: list[Impression], teams: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clicked, team index (−1 none), shared) per search and shown rank, padded to the longest list."""
    depth = max((len(i.hits) for i in imps), default=0)
    labels = {team_label(k): k for k in range(teams)}
    clicked = np.zeros((len(imps), depth), dtype=bool)
    team = np.full((len(imps), depth), -1, dtype=np.int64)
    shared = np.zeros((len(imps), depth), dtype=bool)
    for row, imp in enumerate(imps):
        for k, hit in enumerate(sorted(imp.hits, key=lambda h: h.position)):
            clicked[row, k] = hit.doc_id in imp.clicks
            team[row, k] = labels.get(hit.team or "", -1)
            shared[row, k] = hit.shared
    return clicked, team, shared


def _sign_power(wins_a: int, wins_b: int, searches: int, alpha: float) -> PowerAt:
    """Power at n searches of the sign test for the observed win rate (normal approximation)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    decisive = wins_a + wins_b
    h = abs(float(proportion_effectsize(wins_b / decisive, 0.5))) if decisive else 0.0
    share = decisive / searches if searches else 0.0
    solver = NormalIndPower()
    if h <= 0:
        return lambda n: alpha
    return lambda n: float(solver.power(effect_size=h, nobs1=max(n * share, 1e-9), alpha=alpha, ratio=0))


def _t_power(d: float, alpha: float) -> PowerAt:
    """Power at n searches of the one-sample t-test for standardised effect ``d`` (statsmodels; its
    noncentral t turns NaN for very large n, where the normal approximation is exact enough)."""
    from scipy import stats
    from statsmodels.stats.power import TTestPower

    solver = TTestPower()
    z = float(stats.norm.isf(alpha / 2))

    def at(n: int) -> float:
        value = float(solver.power(effect_size=abs(d), nobs=max(n, 2), alpha=alpha))
        if math.isfinite(value):
            return value
        shift = abs(d) * math.sqrt(n)
        return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))

    return at if d else (lambda n: alpha)


def _needed(power_at: PowerAt, target: float, cap: int = 10_000_000) -> int | None:
    """Smallest n with ``power_at(n) >= target`` (doubling, then bisection); None beyond ``cap``."""
    high = 2
    while power_at(high) < target:
        if high >= cap:
            return None
        high *= 2
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_at(mid) >= target else (mid, high)
    return high


def _verdict(method: str, test: str, a: str, b: str, n: int, effect: Interval, p: float, p_adj: float,
             alpha: float, power: float, power_at: PowerAt) -> MethodVerdict:
    significant = bool(math.isfinite(p_adj) and p_adj < alpha and effect.value != 0)
    needed = _needed(power_at, power) if effect.value else None
    more = None if needed is None else max(0, needed - n)
    top = max(2 * n, needed or 0, 100)
    curve = {int(x): round(power_at(int(x)), 4) for x in np.unique(np.geomspace(10, top, CURVE_POINTS).astype(int))}
    ci = f"95% CI {fmt_signed(effect.low, 3)} to {fmt_signed(effect.high, 3)}" if alpha == 0.05 else \
        f"{100 * (1 - alpha):g}% CI {fmt_signed(effect.low, 3)} to {fmt_signed(effect.high, 3)}"
    shown = fmt_p(p_adj) + (" (Holm)" if p_adj != p else "")
    if significant:
        winner, loser = (b, a) if effect.value > 0 else (a, b)
        text = f"{method}: {winner} is preferred over {loser} (Δ={fmt_signed(effect.value, 3)}, {ci}, {shown})."
    else:
        tail = (f"~{more:,} more searches needed for {100 * power:g}% power at the observed effect."
                if more else "no preference seen.")
        text = f"{method}: no significant preference between {b} and {a} yet (Δ={fmt_signed(effect.value, 3)}, " \
               f"{ci}, {shown}); {tail}"
    return MethodVerdict(method, test, a, b, n, effect, p, p_adj, significant, needed, more, curve, text)


def _t_interval(x: np.ndarray, alpha: float) -> Interval:
    from scipy import stats

    if x.size < 2:
        return Interval(float(x.mean()) if x.size else math.nan, math.nan, math.nan)
    half = float(stats.t.isf(alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(float(x.mean()), float(x.mean()) - half, float(x.mean()) + half)


def interleaving_methods(imps: list[Impression], exp: Experiment, *, alpha: float,
                         power: float) -> list[MethodVerdict]:
    """Two variants: a verdict per credit rule; more: per pair a Holm-adjusted verdict of the sign test and
    of the click-gap credit."""
    from statsmodels.stats.multitest import multipletests

    names = [v.name for v in exp.variants]
    clicked, team, shared = search_arrays(imps, len(names))
    n = len(imps)
    if len(names) == 2:
        out = []
        outcome = np.sign(click_difference(clicked, team))
        wins_b, wins_a = int((outcome > 0).sum()), int((outcome < 0).sum())
        p, _ = credit_test("team_draft", clicked[None], team[None], shared[None])
        out.append(_verdict("team_draft", "mid-p sign test of each search's winning team", names[0], names[1], n,
                            _t_interval(outcome, alpha), float(p[0]), float(p[0]), alpha, power,
                            _sign_power(wins_a, wins_b, n, alpha)))
        for rule, test in T_TESTED_RULES.items():
            diff = credit_difference(rule, clicked, team, shared)
            p, _ = credit_test(rule, clicked[None], team[None], shared[None])
            sd = float(diff.std(ddof=1)) if n > 1 else 0.0
            out.append(_verdict(rule, test, names[0], names[1], n, _t_interval(diff, alpha), float(p[0]),
                                float(p[0]), alpha, power, _t_power(float(diff.mean()) / sd if sd > 0 else 0.0,
                                                                    alpha)))
        return out
    pairs = list(itertools.combinations(range(len(names)), 2))
    weights = click_gap_weights(clicked, team)  # from the whole list's clicks: no pair's teams read
    raw, raw_gap = [], []
    for i, j in pairs:
        pair_team = np.where(team == i, 0, np.where(team == j, 1, -1))
        outcome = np.sign(click_difference(clicked, pair_team))
        pair_p, _ = sign_test_p(outcome[None])
        raw.append((i, j, outcome, float(pair_p[0])))
        gap = click_difference(clicked, pair_team, ~shared, weights)
        gap_p, _ = mean_test_p(gap[None])
        raw_gap.append((i, j, gap, float(gap_p[0])))
    verdicts = []
    adjusted = multipletests([r[3] for r in raw], method="holm")[1]
    for (i, j, outcome, p_value), p_adj in zip(raw, adjusted, strict=True):
        wins_b, wins_a = int((outcome > 0).sum()), int((outcome < 0).sum())
        verdicts.append(_verdict("multileave", f"team-draft multileaving, sign test of {names[j]} vs {names[i]} "
                                 f"(Holm over {len(pairs)} pairs)", names[i], names[j], n,
                                 _t_interval(outcome, alpha), p_value, float(p_adj), alpha, power,
                                 _sign_power(wins_a, wins_b, n, alpha / len(pairs))))
    adjusted = multipletests([r[3] for r in raw_gap], method="holm")[1]
    for (i, j, gap, p_value), p_adj in zip(raw_gap, adjusted, strict=True):
        sd = float(gap.std(ddof=1)) if n > 1 else 0.0
        verdicts.append(_verdict("multileave_click_gap", f"team-draft multileaving, t-test of the click-gap "
                                 f"credit of {names[j]} minus {names[i]} (Holm over {len(pairs)} pairs)",
                                 names[i], names[j], n, _t_interval(gap, alpha), p_value, float(p_adj), alpha,
                                 power, _t_power(float(gap.mean()) / sd if sd > 0 else 0.0, alpha / len(pairs))))
    return verdicts
