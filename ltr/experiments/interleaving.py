"""Interleaving statistics: each search's winning team, the sign test, and the preference with its interval.

Interleaving (Radlinski et al. 2008): each search's outcome is ``interleaving_outcome`` of the teams
logged in ``Shown.team``; team A is the experiment's first variant (control), team B its second.
The sign test (mid-p: ``ltr.experiments.credit.sign_test_counts``) on B-wins vs A-wins is valid per
search under the null, because team-draft's per-search coin makes the outcomes of one user's searches
independent when the rankers are equally good; the interval of the preference Δ = (B wins − A wins) / searches is
nevertheless clustered by unit, since under a real difference a user's searches are correlated.
``interleave_unit="user"`` instead reduces each user to one majority outcome (fewer, independent
units — the conservative choice when one user's searches share information, e.g. repeated queries).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ltr.clicks.impressions import Impression
from ltr.experiments.credit import sign_test_counts
from ltr.experiments.metrics import METRICS, encode_units, impression_metrics, per_unit_means, unit_mean_interval
from ltr.experiments.results import InterleavingSummary, Interval, VariantSummary, fmt_p, fmt_signed
from ltr.experiments.store import Experiment
from ltr.experiments.team_draft import interleaving_outcome, team_clicks, team_label

InterleaveUnit = Literal["impression", "user"]


def outcome_b(imp: Impression) -> int:
    """+1 if team B (the treatment) won this search, −1 if team A did, 0 for a tie or no click."""
    teams = [h.team for h in imp.hits]
    return -interleaving_outcome(teams, [h.doc_id in imp.clicks for h in imp.hits])


def credit_b(imp: Impression) -> int:
    """Clicks on team B's documents minus clicks on team A's in this search."""
    a, b = team_clicks([h.team for h in imp.hits], [h.doc_id in imp.clicks for h in imp.hits])
    return b - a


def clustered_mean(y: Sequence[float], groups: Sequence[str], *, alpha: float = 0.05) -> Interval:
    """The per-search mean of ``y`` with an interval clustered by unit (cluster-robust OLS, t with G−1 df).

    Used where the estimand is per search (the interleaving preference Δ); NaN bounds below two units.
    """
    import statsmodels.api as sm

    arr = np.asarray(y, dtype=float)
    if arr.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    codes = encode_units(groups)
    if len(np.unique(codes)) < 2:
        return Interval(float(arr.mean()), math.nan, math.nan)
    res = sm.OLS(arr, np.ones((arr.size, 1))).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    low, high = res.conf_int(alpha=alpha)[0]
    return Interval(float(res.params[0]), float(low), float(high))


def interleaving_summary(imps: list[Impression], exp: Experiment, *, unit: InterleaveUnit, alpha: float,
                         power: float) -> InterleavingSummary:
    """Wins, ties, sign test, preference Δ and searches needed of an experiment's (own, time-ordered) searches."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize
    from statsmodels.stats.weightstats import DescrStatsW

    a, b = exp.variants[0].name, exp.variants[1].name
    outcomes = [outcome_b(i) for i in imps]
    if unit == "user":
        per_user: dict[str, int] = defaultdict(int)
        for imp, o in zip(imps, outcomes, strict=True):
            per_user[imp.unit] += o
        values = [int(np.sign(s)) for s in per_user.values()]
        if len(values) >= 2 and np.var(values) > 0:
            low, high = DescrStatsW(np.array(values, dtype=float)).tconfint_mean(alpha=alpha)
            pref = Interval(float(np.mean(values)), float(low), float(high))
        else:
            pref = Interval(float(np.mean(values)) if values else math.nan, math.nan, math.nan)
    else:
        values = outcomes
        pref = clustered_mean([float(o) for o in outcomes], [i.unit for i in imps], alpha=alpha)
    wins_b = sum(1 for v in values if v > 0)
    wins_a = sum(1 for v in values if v < 0)
    ties = len(values) - wins_a - wins_b
    decisive = wins_a + wins_b
    p = float(sign_test_counts(wins_a, wins_b)) if decisive else math.nan
    rate = wins_b / decisive if decisive else math.nan
    needed = more = None
    if decisive and wins_a != wins_b:
        h = abs(float(proportion_effectsize(rate, 0.5)))
        try:
            n_dec = float(np.asarray(NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power,
                                                                  ratio=0)).ravel()[0])
            needed = math.ceil(n_dec / (decisive / len(values)))
            more = max(0, needed - len(values))
        except (ValueError, RuntimeError):
            pass
    significant = bool(math.isfinite(p) and p < alpha)
    unit_word = "searches" if unit == "impression" else "users"
    tally = f"{b} won {wins_b:,}, {a} won {wins_a:,}, {ties:,} ties"
    ci = f"{100 * (1 - alpha):g}% CI {fmt_signed(pref.low, 3)} to {fmt_signed(pref.high, 3)}"
    if not decisive:
        verdict = f"No clicks that separate {b} from {a} yet ({len(values):,} {unit_word}, all ties)."
    elif significant:
        winner, loser = (b, a) if wins_b > wins_a else (a, b)
        verdict = (f"{winner} is preferred over {loser} in interleaving: {tally}; preference for {b} "
                   f"Δ={fmt_signed(pref.value, 3)} ({ci}), {fmt_p(p)}.")
    else:
        tail = (f"~{more:,} more {unit_word} needed to detect the observed preference with "
                f"{100 * power:g}% power." if more else "the observed preference is zero or noise.")
        verdict = (f"No significant preference between {b} and {a} yet ({tally}; Δ={fmt_signed(pref.value, 3)}, "
                   f"{ci}, {fmt_p(p)}); {tail}")
    return InterleavingSummary(a, b, unit, len(values), wins_a, wins_b, ties, p, pref, rate, needed, more,
                               significant, verdict)


def team_summaries(imps: list[Impression], exp: Experiment, *, alpha: float) -> list[VariantSummary]:
    """Each team's row of the summary: every search, but only clicks on that team's documents count."""
    codes = encode_units([i.unit for i in imps])
    units = len(np.unique(codes))
    out = []
    for team, v in zip(map(team_label, range(len(exp.variants))), exp.variants, strict=True):
        rows = [impression_metrics(i, team) for i in imps]
        metrics = {m: unit_mean_interval(per_unit_means(np.array([r[m] for r in rows]), codes), alpha=alpha)
                   for m in METRICS}
        out.append(VariantSummary(v.name, v.ranker, units, len(imps), int(sum(r["ctr"] for r in rows)), metrics))
    return out
