"""Experiment statistics: bucketed A/B per variant and team-draft interleaving, with honest intervals.

The randomisation unit of a bucketed experiment is the user (``Impression.unit``), and one user makes
many searches, so searches are not independent: a per-search binomial interval is too narrow and an
A/A test would "find" differences far more often than 5% of the time (about half the time on the
synthetic traffic of the unit tests). Every A/B number here is therefore computed **per user**: each
metric is first averaged over a user's searches (the user's CTR, clicks@k, abandonment, MRR), and
variants are compared with Welch's t statistic on those per-user values (statsmodels ``CompareMeans``),
the intervals are t intervals over users, Cohen's d is on the per-user scale and so is the power
analysis (``TTestIndPower``). The reported p-value is a randomisation p-value of that statistic
(``PERMUTATIONS`` re-assignments of the users to the arms; the t approximation above
``RANDOMIZATION_MAX_UNITS`` users, where it is accurate). Re-assigning users is exactly what a
re-bucketing does, so the randomisation test holds its level by construction, whatever the skew of
per-user CTRs and however few the users; on simulated traffic the two tests rejected about equally
often (A/A .054 randomisation vs .053 t, the same 4 x 1,000 re-bucketings,
bench/results/feedback_loop_aa.json), so the gain is a guarantee, not a measured correction. The planning helpers
(``sessions_to_significance``, ``sessions_for_power``) keep the t approximation: they run the test
thousands of times. The reported CTR is thus "the average user's CTR", not pooled clicks / searches:
the pooled ratio with a cluster-robust (delta-method) interval was measured too liberal with ~50
users per arm and heavy-tailed activity (A/A false-positive rate 6.5% over 1,000 experiments, vs 4.1%
for the per-user Welch test), and early, small experiments are exactly where people look.

Interleaving (Radlinski et al. 2008): each search's outcome is ``interleaving_outcome`` of the teams
logged in ``Shown.team``; team A is the experiment's first variant (control), team B its second.
The sign test (``scipy.stats.binomtest``) on B-wins vs A-wins is valid per search under the null,
because team-draft's per-search coin makes the outcomes of one user's searches independent when the
rankers are equally good; the interval of the preference Δ = (B wins − A wins) / searches is
nevertheless clustered by unit, since under a real difference a user's searches are correlated.
``interleave_unit="user"`` instead reduces each user to one majority outcome (fewer, independent
units — the conservative choice when one user's searches share information, e.g. repeated queries).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression
from ltr.experiments.store import Experiment
from ltr.experiments.team_draft import TEAM_A, TEAM_B, interleaving_outcome, team_clicks

METRICS: tuple[str, ...] = ("ctr", "clicks@1", "clicks@3", "clicks@10", "abandonment", "mrr")
METRIC_LABELS: dict[str, str] = {
    "ctr": "CTR", "clicks@1": "clicks@1", "clicks@3": "clicks@3", "clicks@10": "clicks@10",
    "abandonment": "abandonment", "mrr": "MRR",
}
LOWER_IS_BETTER = frozenset({"abandonment"})
PERMUTATIONS = 2000  # re-assignments of users per A/B p-value (Monte Carlo error ~.005 at p = .05)
# above this many users the t approximation is used instead: it is accurate there, and re-assigning
# 100,000 users 2,000 times takes ~14 s per metric
RANDOMIZATION_MAX_UNITS = 20_000
InterleaveUnit = Literal["impression", "user"]
Bucket = Literal["minute", "hour", "day"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% (or 1−alpha) interval; NaN where it cannot be computed."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VariantSummary:
    """One variant (A/B) or one team's credited clicks (interleaving)."""

    name: str
    ranker: str
    units: int
    impressions: int
    clicks: int
    metrics: dict[str, Interval]


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric; ``diff`` = treatment − control, clustered by unit."""

    metric: str
    control: str
    treatment: str
    p_value: float
    p_adjusted: float  # Holm–Šidák over the treatments, when there are several
    diff: Interval
    relative: Interval  # (treatment / control) − 1
    cohens_d: float  # on the per-unit (linearised) scale the test uses
    cohens_h: float | None  # for metrics that are proportions
    units_needed: int | None  # per variant, 80% power at alpha for the observed effect
    more_units_needed: int | None
    significant: bool
    verdict: str


@dataclass(frozen=True)
class InterleavingSummary:
    team_a: str
    team_b: str
    unit: str  # "impression" or "user": what one outcome is
    outcomes: int
    wins_a: int
    wins_b: int
    ties: int
    p_value: float
    preference: Interval  # Δ = (wins_b − wins_a) / outcomes: > 0 favours B
    win_rate_b: float  # wins_b / (wins_a + wins_b)
    sessions_needed: int | None
    more_sessions_needed: int | None
    significant: bool
    verdict: str


@dataclass(frozen=True)
class SeriesPoint:
    variant: str
    start: datetime
    impressions: int
    ctr: Interval


@dataclass
class ExperimentStats:
    experiment: Experiment
    alpha: float
    power: float
    primary: str
    first_seen: datetime
    last_seen: datetime
    impressions: int
    units: int
    ignored: int  # impressions of this experiment naming no known variant
    variants: list[VariantSummary]
    comparisons: list[Comparison]
    interleaving: InterleavingSummary | None
    series: list[SeriesPoint]
    bucket: str
    srm_p: float | None  # sample-ratio mismatch (chi-square of units vs shares), A/B only
    verdict: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["experiment"] = self.experiment.to_json()
        return _jsonable(out)


# -- per-impression metrics ---------------------------------------------------------------------
def impression_metrics(imp: Impression, team: str | None = None) -> dict[str, float]:
    """The metrics of one search; with ``team``, only clicks on that team's documents count."""
    positions = [h.position for h in imp.hits
                 if h.doc_id in imp.clicks and (team is None or h.team == team)]
    first = min(positions) if positions else 0
    return {
        "ctr": float(len(positions)),
        "clicks@1": float(bool(positions) and first <= 1),
        "clicks@3": float(bool(positions) and first <= 3),
        "clicks@10": float(bool(positions) and first <= 10),
        "abandonment": float(not imp.clicks),
        "mrr": 1.0 / first if first else 0.0,
    }


# -- clustered estimation (statsmodels) -----------------------------------------------------------
def _codes(values: Sequence[str]) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return np.asarray(inverse, dtype=np.int64)


def per_unit_means(y: np.ndarray, unit_codes: np.ndarray) -> np.ndarray:
    """Each unit's mean of a per-search metric (units without rows dropped)."""
    if y.size == 0:
        return np.zeros(0)
    counts = np.bincount(unit_codes)
    sums = np.bincount(unit_codes, weights=y)
    present = counts > 0
    return np.asarray(sums[present] / counts[present], dtype=float)


def unit_mean_interval(values: np.ndarray, *, alpha: float = 0.05) -> Interval:
    """Mean over units with its t interval (statsmodels); NaN bounds below two units."""
    from statsmodels.stats.weightstats import DescrStatsW

    if values.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size < 2:
        return Interval(mean, math.nan, math.nan)
    low, high = DescrStatsW(values).tconfint_mean(alpha=alpha)
    return Interval(mean, float(low), float(high))


def clustered_mean(y: Sequence[float], groups: Sequence[str], *, alpha: float = 0.05) -> Interval:
    """The per-search mean of ``y`` with an interval clustered by unit (cluster-robust OLS, t with G−1 df).

    Used where the estimand is per search (the interleaving preference Δ); NaN bounds below two units.
    """
    import statsmodels.api as sm

    arr = np.asarray(y, dtype=float)
    if arr.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    codes = _codes(groups)
    if len(np.unique(codes)) < 2:
        return Interval(float(arr.mean()), math.nan, math.nan)
    res = sm.OLS(arr, np.ones((arr.size, 1))).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    low, high = res.conf_int(alpha=alpha)[0]
    return Interval(float(res.params[0]), float(low), float(high))


def _nan_if_degenerate(x: float) -> float:
    return x if math.isfinite(x) else math.nan


@dataclass(frozen=True)
class _Contrast:
    control: Interval
    treatment: Interval
    diff: Interval
    relative: Interval
    p_value: float
    sd_control: float  # standard deviation of the per-unit values
    sd_treatment: float


def randomization_p(control: np.ndarray, treatment: np.ndarray, *, permutations: int = PERMUTATIONS,
                    seed: int | None = None) -> float:
    """Two-sided randomisation p-value of Welch's t (``scipy.stats.permutation_test``): how often
    re-assigning the units to the arms, arm sizes kept, gives a statistic at least as extreme.

    The re-assignments are drawn from a generator seeded by the data itself (unless ``seed`` is
    given): the same data gives the same p-value, and different data - another bucketing of the same
    users - gets independent re-assignments. A fixed seed reused one set of 2,000 index permutations
    for every experiment of the same size, so that set's Monte Carlo error could not average out over
    experiments. Measured on the same six A/A traffic runs x 2,000 re-bucketings it made no
    difference: .0522 with seed 0 and .0522 data-seeded (bench/results/feedback_loop_aa_more.json,
    feedback_loop_aa_dataseed.json)."""
    from scipy import stats

    if control.size < 2 or treatment.size < 2:
        return math.nan
    if np.ptp(np.concatenate([control, treatment])) == 0:
        return 1.0  # every unit has the same value: no assignment is more extreme than another

    def welch_t(t: np.ndarray, c: np.ndarray, axis: int) -> np.ndarray:
        return np.asarray(stats.ttest_ind(t, c, equal_var=False, axis=axis).statistic)

    # batches of re-assignments bound the memory: ~4M values at a time, whatever the number of units
    batch = max(1, min(permutations, 4_000_000 // (control.size + treatment.size)))
    result = stats.permutation_test((treatment, control), welch_t, permutation_type="independent",
                                    vectorized=True, n_resamples=permutations, batch=batch,
                                    alternative="two-sided", rng=np.random.default_rng(
                                        _data_seed(control, treatment) if seed is None else seed))
    return float(result.pvalue)


def _data_seed(control: np.ndarray, treatment: np.ndarray) -> int:
    digest = hashlib.sha256(np.ascontiguousarray(control, dtype=np.float64).tobytes() + b"|"
                            + np.ascontiguousarray(treatment, dtype=np.float64).tobytes()).digest()
    return int.from_bytes(digest[:8], "little")


def _welch(control: np.ndarray, treatment: np.ndarray, *, alpha: float, permutations: int = 0) -> _Contrast | None:
    """Welch's t-test of the per-unit values of treatment vs control (statsmodels CompareMeans); with
    ``permutations``, the p-value is ``randomization_p`` of the same statistic instead of the t one."""
    from scipy import stats
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    if control.size < 2 or treatment.size < 2:
        return None
    d_t, d_c = DescrStatsW(treatment), DescrStatsW(control)
    cm = CompareMeans(d_t, d_c)
    _, p, dof = cm.ttest_ind(usevar="unequal")
    if permutations and control.size + treatment.size <= RANDOMIZATION_MAX_UNITS:
        p = randomization_p(control, treatment, permutations=permutations)
    d_low, d_high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    a, b = float(d_c.mean), float(d_t.mean)
    var_a, var_b = float(d_c.std_mean) ** 2, float(d_t.std_mean) ** 2
    # relative difference: delta method on log(b / a), Welch degrees of freedom
    rel = Interval(math.nan, math.nan, math.nan)
    if a > 0 and b > 0 and math.isfinite(float(dof)):
        half = float(stats.t.ppf(1 - alpha / 2, float(dof))) * math.sqrt(var_a / a**2 + var_b / b**2)
        rel = Interval(b / a - 1, math.exp(math.log(b / a) - half) - 1, math.exp(math.log(b / a) + half) - 1)
    return _Contrast(
        control=unit_mean_interval(control, alpha=alpha), treatment=unit_mean_interval(treatment, alpha=alpha),
        diff=Interval(b - a, _nan_if_degenerate(float(d_low)), _nan_if_degenerate(float(d_high))),
        relative=rel, p_value=_nan_if_degenerate(float(p)),
        sd_control=float(d_c.std), sd_treatment=float(d_t.std))


def _units_needed(effect: float, *, alpha: float, power: float, ratio: float = 1.0) -> int | None:
    """Units of the control arm for ``power`` at two-sided ``alpha`` (statsmodels t-test power)."""
    from statsmodels.stats.power import TTestIndPower

    if not math.isfinite(effect) or abs(effect) < 1e-9:
        return None
    try:
        n = TTestIndPower().solve_power(effect_size=abs(effect), alpha=alpha, power=power, ratio=ratio,
                                        alternative="two-sided")
    except (ValueError, RuntimeError):
        return None
    n = float(np.asarray(n).ravel()[0])
    return math.ceil(n) if math.isfinite(n) else None


# -- A/B ----------------------------------------------------------------------------------------
def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.{digits}f}"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p=n/a"
    return "p<0.0001" if p < 1e-4 else f"p={p:.4f}"


def _ab_verdict(c: Comparison, label: str, alpha: float, power: float, unit_word: str = "users") -> str:
    ci = f"95% CI {_fmt(c.diff.low)} to {_fmt(c.diff.high)}" if alpha == 0.05 else \
        f"{100 * (1 - alpha):g}% CI {_fmt(c.diff.low)} to {_fmt(c.diff.high)}"
    rel = f" ({100 * c.relative.value:+.1f}%)" if math.isfinite(c.relative.value) else ""
    if not math.isfinite(c.p_value):
        return (f"{c.treatment} vs {c.control} on {label}: not testable yet (too few {unit_word} "
                "or no variation in the metric).")
    if c.significant:
        better = (c.diff.value > 0) != (c.metric in LOWER_IS_BETTER)
        word = "beats" if better else "is worse than"
        return (f"{c.treatment} {word} {c.control} on {label} by {_fmt(c.diff.value)}{rel}, {ci}, "
                f"{_fmt_p(c.p_adjusted)}.")
    head = (f"No significant difference on {label} between {c.treatment} and {c.control} yet "
            f"(Δ {_fmt(c.diff.value)}{rel}, {ci}, {_fmt_p(c.p_adjusted)})")
    if c.more_units_needed is None:
        return head + "; the observed effect is zero, so no sample size would detect it."
    return (head + f"; ~{c.more_units_needed:,} more {unit_word} per variant needed to detect the observed "
            f"effect with {100 * power:g}% power." if c.more_units_needed > 0 else
            head + "; the sample is already large enough for the observed effect, which is likely noise.")


def _holm(pvalues: list[float]) -> list[float]:
    from statsmodels.stats.multitest import multipletests

    finite = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    out = list(pvalues)
    if len(finite) > 1:
        adjusted = multipletests([pvalues[i] for i in finite], method="holm-sidak")[1]
        for i, p in zip(finite, adjusted, strict=True):
            out[i] = float(p)
    return out


def _ab(imps: list[Impression], exp: Experiment, *, primary: str, alpha: float, power: float,
        ) -> tuple[list[VariantSummary], list[Comparison], float | None]:
    from scipy import stats
    from statsmodels.stats.proportion import proportion_effectsize

    names = [v.name for v in exp.variants]
    per_variant: dict[str, list[Impression]] = {n: [] for n in names}
    for imp in imps:
        per_variant[str(imp.variant)].append(imp)
    values: dict[str, dict[str, np.ndarray]] = {}  # variant -> metric -> per-user means
    for n in names:
        rows = [impression_metrics(i) for i in per_variant[n]]
        codes = _codes([i.unit for i in per_variant[n]])
        values[n] = {m: per_unit_means(np.array([r[m] for r in rows]), codes) for m in METRICS}
    summaries = [VariantSummary(v.name, v.ranker, len({i.unit for i in per_variant[v.name]}),
                                len(per_variant[v.name]), sum(len(i.clicks) for i in per_variant[v.name]),
                                {m: unit_mean_interval(values[v.name][m], alpha=alpha) for m in METRICS})
                 for v in exp.variants]
    # sample-ratio mismatch: units per variant against the configured shares
    srm_p = None
    counts = [s.units for s in summaries]
    if sum(counts) >= 20:
        expected = [sum(counts) * v.share for v in exp.variants]
        srm_p = float(stats.chisquare(counts, expected).pvalue)

    control = names[0]
    raw: list[tuple[str, str, _Contrast | None]] = [
        (treatment, metric, _welch(values[control][metric], values[treatment][metric], alpha=alpha,
                                   permutations=PERMUTATIONS))
        for treatment in names[1:] for metric in METRICS]
    # Holm–Šidák across treatments, per metric (valid for two-sided tests sharing a control; unlike
    # statsmodels' plain "holm" branch it does not call gc.collect())
    adjusted: dict[tuple[str, str], float] = {}
    for metric in METRICS:
        keyed = [(t, c) for t, m, c in raw if m == metric]
        ps = _holm([c.p_value if c else math.nan for _, c in keyed])
        adjusted.update({(t, metric): p for (t, _), p in zip(keyed, ps, strict=True)})

    comparisons = []
    for treatment, metric, c in raw:
        if c is None:
            nan = Interval(math.nan, math.nan, math.nan)
            comp = Comparison(metric, control, treatment, math.nan, math.nan, nan, nan, math.nan, None,
                              None, None, False, "")
        else:
            pooled_sd = math.sqrt((c.sd_control**2 + c.sd_treatment**2) / 2)
            d = c.diff.value / pooled_sd if pooled_sd > 0 else math.nan
            h = None
            if all(0 <= x <= 1 for x in (c.control.value, c.treatment.value)):
                h = float(proportion_effectsize(c.treatment.value, c.control.value))
            n_c, n_t = values[control][metric].size, values[treatment][metric].size
            needed = _units_needed(d, alpha=alpha, power=power, ratio=(n_t / n_c) if n_c else 1.0)
            more = None if needed is None else max(0, needed - min(n_c, n_t))
            p_adj = adjusted[(treatment, metric)]
            comp = Comparison(metric, control, treatment, c.p_value, p_adj, c.diff, c.relative, d, h, needed,
                              more, bool(math.isfinite(p_adj) and p_adj < alpha), "")
        comparisons.append(replace(comp, verdict=_ab_verdict(comp, METRIC_LABELS[comp.metric], alpha, power)))
    return summaries, comparisons, srm_p


# -- interleaving ---------------------------------------------------------------------------------
def _outcome_b(imp: Impression) -> int:
    """+1 if team B (the treatment) won this search, −1 if team A did, 0 for a tie or no click."""
    teams = [h.team for h in imp.hits]
    return -interleaving_outcome(teams, [h.doc_id in imp.clicks for h in imp.hits])


def _credit_b(imp: Impression) -> int:
    """Clicks on team B's documents minus clicks on team A's in this search."""
    a, b = team_clicks([h.team for h in imp.hits], [h.doc_id in imp.clicks for h in imp.hits])
    return b - a


def _interleaving(imps: list[Impression], exp: Experiment, *, unit: InterleaveUnit, alpha: float,
                  power: float) -> InterleavingSummary:
    from scipy import stats
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize
    from statsmodels.stats.weightstats import DescrStatsW

    a, b = exp.variants[0].name, exp.variants[1].name
    outcomes = [_outcome_b(i) for i in imps]
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
    p = float(stats.binomtest(wins_b, decisive, 0.5).pvalue) if decisive else math.nan
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
    ci = f"{100 * (1 - alpha):g}% CI {_fmt(pref.low, 3)} to {_fmt(pref.high, 3)}"
    if not decisive:
        verdict = f"No clicks that separate {b} from {a} yet ({len(values):,} {unit_word}, all ties)."
    elif significant:
        winner, loser = (b, a) if wins_b > wins_a else (a, b)
        verdict = (f"{winner} is preferred over {loser} in interleaving: {tally}; preference for {b} "
                   f"Δ={_fmt(pref.value, 3)} ({ci}), {_fmt_p(p)}.")
    else:
        tail = (f"~{more:,} more {unit_word} needed to detect the observed preference with "
                f"{100 * power:g}% power." if more else "the observed preference is zero or noise.")
        verdict = (f"No significant preference between {b} and {a} yet ({tally}; Δ={_fmt(pref.value, 3)}, "
                   f"{ci}, {_fmt_p(p)}); {tail}")
    return InterleavingSummary(a, b, unit, len(values), wins_a, wins_b, ties, p, pref, rate, needed, more,
                               significant, verdict)


def _team_summaries(imps: list[Impression], exp: Experiment, *, alpha: float) -> list[VariantSummary]:
    codes = _codes([i.unit for i in imps])
    units = len(np.unique(codes))
    out = []
    for team, v in zip((TEAM_A, TEAM_B), exp.variants, strict=True):
        rows = [impression_metrics(i, team) for i in imps]
        metrics = {m: unit_mean_interval(per_unit_means(np.array([r[m] for r in rows]), codes), alpha=alpha)
                   for m in METRICS}
        out.append(VariantSummary(v.name, v.ranker, units, len(imps), int(sum(r["ctr"] for r in rows)), metrics))
    return out


# -- time series ------------------------------------------------------------------------------------
def _bucket_start(ts: datetime, bucket: Bucket) -> datetime:
    ts = ts.astimezone(UTC).replace(second=0, microsecond=0)
    if bucket == "minute":
        return ts
    return ts.replace(minute=0) if bucket == "hour" else ts.replace(hour=0, minute=0)


def ctr_series(imps: list[Impression], exp: Experiment, *, bucket: Bucket | None = None,
               alpha: float = 0.05) -> tuple[list[SeriesPoint], Bucket]:
    """CTR per hour or day and variant (A/B) or team's credited clicks (interleaving).

    Like everywhere else, each point is the mean over the users active in that bucket of their CTR,
    with a t interval over those users. The bucket defaults to minutes for spans up to three hours
    (a simulated run), hours up to three days, days beyond.
    """
    if not imps:
        return [], bucket or "hour"
    span = imps[-1].timestamp - imps[0].timestamp
    chosen: Bucket = bucket or ("minute" if span <= timedelta(hours=3) else
                                "hour" if span <= timedelta(days=3) else "day")
    starts = np.array([_bucket_start(i.timestamp, chosen).timestamp() for i in imps])
    codes = _codes([i.unit for i in imps])
    if exp.mode == "ab":
        lines = [(v.name, np.array([i.variant == v.name for i in imps]),
                  np.array([impression_metrics(i)["ctr"] for i in imps])) for v in exp.variants]
    else:
        everyone = np.ones(len(imps), dtype=bool)
        lines = [(v.name, everyone, np.array([impression_metrics(i, team)["ctr"] for i in imps]))
                 for team, v in zip((TEAM_A, TEAM_B), exp.variants, strict=True)]
    points: list[SeriesPoint] = []
    for start in np.unique(starts):
        in_bucket = starts == start
        when = datetime.fromtimestamp(float(start), UTC)
        for name, member, y in lines:
            mask = in_bucket & member
            if mask.any():
                ctr = unit_mean_interval(per_unit_means(y[mask], codes[mask]), alpha=alpha)
                points.append(SeriesPoint(name, when, int(mask.sum()), ctr))
    return points, chosen


# -- entry points -----------------------------------------------------------------------------------
def experiment_impressions(impressions: Sequence[Impression], experiment: Experiment) -> tuple[list[Impression], int]:
    """This experiment's impressions in time order, and how many named an unknown variant."""
    names = {v.name for v in experiment.variants}
    own = [i for i in impressions if i.experiment == experiment.id]
    if experiment.mode == "interleave":
        kept = [i for i in own if any(h.team in (TEAM_A, TEAM_B) for h in i.hits)]
    else:
        kept = [i for i in own if i.variant in names]
    return sorted(kept, key=lambda i: (i.timestamp, i.request_id)), len(own) - len(kept)


def compute_stats(impressions: Sequence[Impression], experiment: Experiment, *, primary: str = "ctr",
                  alpha: float = 0.05, power: float = 0.8, interleave_unit: InterleaveUnit = "impression",
                  bucket: Bucket | None = None) -> ExperimentStats:
    """Everything the report shows. Raises ``DataError`` when the experiment has no traffic yet."""
    if primary not in METRICS:
        raise DataError(f"unknown metric {primary!r}; choose one of {', '.join(METRICS)}")
    imps, ignored = experiment_impressions(impressions, experiment)
    if not imps:
        raise DataError(f"experiment {experiment.id!r} has no traffic yet (no impressions logged for it)")
    notes = []
    if ignored:
        notes.append(f"{ignored:,} impressions of this experiment named no known variant/team and were ignored.")
    series, chosen = ctr_series(imps, experiment, bucket=bucket, alpha=alpha)
    units = len({i.unit for i in imps})
    if experiment.mode == "ab":
        variants, comparisons, srm_p = _ab(imps, experiment, primary=primary, alpha=alpha, power=power)
        interleaving = None
        primary_comps = [c for c in comparisons if c.metric == primary]
        verdict = " ".join(c.verdict for c in primary_comps)
        if srm_p is not None and srm_p < 0.001:
            warning = (f"Sample-ratio mismatch (p={srm_p:.2g}): units per variant disagree with the configured "
                       "shares; assignment or logging is broken and the comparison is not trustworthy.")
            notes.append(warning)
            verdict = warning + " " + verdict
    else:
        variants = _team_summaries(imps, experiment, alpha=alpha)
        comparisons, srm_p = [], None
        interleaving = _interleaving(imps, experiment, unit=interleave_unit, alpha=alpha, power=power)
        verdict = interleaving.verdict
    return ExperimentStats(experiment, alpha, power, primary, imps[0].timestamp, imps[-1].timestamp, len(imps),
                           units, ignored, variants, comparisons, interleaving, series, chosen, srm_p, verdict,
                           notes)


def _ab_arrays(imps: list[Impression], experiment: Experiment, metric: str,
               treatment: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(metric per search, arm 0/1 (−1 = other variant), unit code) of an A/B experiment's searches."""
    control = experiment.variants[0].name
    treated = treatment or experiment.variants[1].name
    y = np.array([impression_metrics(i)[metric] for i in imps])
    arm = np.array([1 if i.variant == treated else 0 if i.variant == control else -1 for i in imps],
                   dtype=np.int64)
    return y, arm, _codes([i.unit for i in imps])


def _arm_test(y: np.ndarray, arm: np.ndarray, codes: np.ndarray, *, alpha: float,
              permutations: int = 0) -> _Contrast | None:
    return _welch(per_unit_means(y[arm == 0], codes[arm == 0]), per_unit_means(y[arm == 1], codes[arm == 1]),
                  alpha=alpha, permutations=permutations)


def interleaving_test(impressions: Sequence[Impression], experiment: Experiment, *,
                      unit: InterleaveUnit = "impression", alpha: float = 0.05,
                      power: float = 0.8) -> InterleavingSummary:
    """Wins/ties/losses, sign test and preference Δ of an interleaving experiment (as in ``compute_stats``)."""
    imps, _ = experiment_impressions(impressions, experiment)
    if not imps:
        raise DataError(f"experiment {experiment.id!r} has no traffic yet (no interleaved impressions)")
    return _interleaving(imps, experiment, unit=unit, alpha=alpha, power=power)


def ab_test(impressions: Sequence[Impression], experiment: Experiment, *, metric: str = "ctr",
            treatment: str | None = None, alpha: float = 0.05) -> tuple[float, Interval]:
    """(p-value, treatment − control with its interval) of one metric: the test ``compute_stats`` uses."""
    imps, _ = experiment_impressions(impressions, experiment)
    c = (_arm_test(*_ab_arrays(imps, experiment, metric, treatment), alpha=alpha, permutations=PERMUTATIONS)
         if imps else None)
    if c is None:
        return math.nan, Interval(math.nan, math.nan, math.nan)
    return c.p_value, c.diff


def sessions_to_significance(impressions: Sequence[Impression], experiment: Experiment, *,
                             alpha: float = 0.05, primary: str = "ctr", step: int | None = None,
                             min_sessions: int = 20) -> int | None:
    """The first number of searches (in time order) after which p stays below ``alpha``.

    p is evaluated after every ``step`` searches (default: about 200 checkpoints, always including
    the last); A/B uses the per-user Welch test of ``primary`` (treatment = second variant),
    interleaving the per-search sign test. None if p is not below ``alpha`` at the end.
    """
    from scipy import stats

    imps, _ = experiment_impressions(impressions, experiment)
    n = len(imps)
    if n < min_sessions:
        return None
    every = step or max(1, n // 200)
    checkpoints = list(range(min_sessions, n + 1, every))
    if checkpoints[-1] != n:
        checkpoints.append(n)
    pvalue: Callable[[int], float]
    if experiment.mode == "interleave":
        cum_b = np.cumsum([_outcome_b(i) > 0 for i in imps])
        cum_a = np.cumsum([_outcome_b(i) < 0 for i in imps])

        def pvalue(k: int) -> float:
            wb, wa = int(cum_b[k - 1]), int(cum_a[k - 1])
            return float(stats.binomtest(wb, wa + wb, 0.5).pvalue) if wa + wb else 1.0
    else:
        y, arm, codes = _ab_arrays(imps, experiment, primary, None)

        def pvalue(k: int) -> float:
            c = _arm_test(y[:k], arm[:k], codes[:k], alpha=alpha)
            return c.p_value if c is not None and math.isfinite(c.p_value) else 1.0

    first: int | None = None
    for k in reversed(checkpoints):
        if pvalue(k) < alpha:
            first = k
        else:
            break
    return first


@dataclass(frozen=True)
class PowerEstimate:
    """Searches an experiment of this traffic needs to reach ``power`` (see ``sessions_for_power``)."""

    sessions: int | None  # None: not reached up to ``max_sessions``
    power: float
    alpha: float
    resamples: int
    direction: int  # +1: the second variant wins in the full data, -1: the first
    curve: dict[int, float]  # searches -> estimated power (share of resamples significant in ``direction``)


def sessions_for_power(impressions: Sequence[Impression], experiment: Experiment, *, power: float = 0.8,
                       alpha: float = 0.05, primary: str = "ctr", resamples: int = 200,
                       max_sessions: int | None = None, seed: int = 0,
                       interleave_test: Literal["sign", "credit"] = "sign") -> PowerEstimate:
    """How many searches the experiment needs so that its test is significant, in the direction the
    whole run shows, with probability ``power``: a cluster bootstrap over users.

    One run's "first time p stayed below alpha" (``sessions_to_significance``) is a single noisy
    path; this asks instead how often a fresh experiment of n searches would decide. Each resample
    draws users with replacement (each draw a new unit, all of its searches kept, so within-user
    correlation stays) until n searches, and runs the experiment's own test on them (A/B: per-user
    Welch on ``primary``; interleaving: the per-search sign test, or with ``interleave_test="credit"``
    a one-sample t-test of each search's click difference, clicks on B's documents minus clicks on
    A's, which also counts by how many clicks a team won). The smallest n with estimated power
    >= ``power`` is found by doubling then bisection over n (the same random draws at every n, so the
    curve is smooth). ``max_sessions`` defaults to 4x the searches observed.
    """
    from scipy import stats

    imps, _ = experiment_impressions(impressions, experiment)
    if len(imps) < 2:
        raise DataError(f"experiment {experiment.id!r} has too little traffic to estimate power ({len(imps)})")
    units = _codes([i.unit for i in imps])
    by_unit = [np.flatnonzero(units == u) for u in range(int(units.max()) + 1)]
    if experiment.mode == "interleave" and interleave_test == "credit":
        credit = np.array([_credit_b(i) for i in imps], dtype=float)
        direction = 1 if credit.mean() >= 0 else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:  # per-search test: draws unused
            x = credit[rows]
            return bool(np.ptp(x) > 0 and x.mean() * direction > 0 and stats.ttest_1samp(x, 0.0).pvalue < alpha)
    elif experiment.mode == "interleave":
        outcome = np.array([_outcome_b(i) for i in imps])
        wb, wa = int((outcome > 0).sum()), int((outcome < 0).sum())
        direction = 1 if wb >= wa else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:  # per-search test: draws unused
            o = outcome[rows]
            b, a = int((o > 0).sum()), int((o < 0).sum())
            return bool(a + b and (b - a) * direction > 0 and stats.binomtest(b, a + b, 0.5).pvalue < alpha)
    else:
        y, arm, _ = _ab_arrays(imps, experiment, primary, None)
        full = _arm_test(y, arm, units, alpha=alpha)
        sign = -1 if primary in LOWER_IS_BETTER else 1
        direction = 1 if full is None or sign * full.diff.value >= 0 else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:
            c = _arm_test(y[rows], arm[rows], draw, alpha=alpha)
            return bool(c is not None and math.isfinite(c.p_value) and c.p_value < alpha
                        and sign * c.diff.value * direction > 0)

    rng = np.random.default_rng(seed)
    cap = max_sessions or 4 * len(imps)
    # one long sequence of user draws per resample, cut at n searches: common random numbers over n
    sizes = np.array([len(rows) for rows in by_unit])
    sequences = []
    for _ in range(resamples):
        picked = rng.integers(0, len(by_unit), size=max(1, int(2 * cap / sizes.mean())))
        while sizes[picked].sum() < cap:  # rarely: an unlucky run of light users
            picked = np.concatenate([picked, rng.integers(0, len(by_unit), size=len(picked))])
        rows = np.concatenate([by_unit[u] for u in picked])
        draw = np.concatenate([np.full(len(by_unit[u]), k) for k, u in enumerate(picked)])
        sequences.append((rows, draw))
    curve: dict[int, float] = {}

    def estimate(n: int) -> float:
        if n not in curve:
            curve[n] = float(np.mean([significant(rows[:n], draw[:n]) for rows, draw in sequences]))
        return curve[n]

    low, high = 0, max(10, min(cap, 20))
    while estimate(high) < power:
        if high >= cap:
            return PowerEstimate(None, power, alpha, resamples, direction, dict(sorted(curve.items())))
        low, high = high, min(cap, 2 * high)
    while high - low > max(1, high // 50):  # ~2% resolution
        mid = (low + high) // 2
        if estimate(mid) >= power:
            high = mid
        else:
            low = mid
    return PowerEstimate(high, power, alpha, resamples, direction, dict(sorted(curve.items())))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value
