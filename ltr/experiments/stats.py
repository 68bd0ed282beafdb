"""Experiment statistics: bucketed A/B per variant and team-draft interleaving, with honest intervals.

The entry points: ``compute_stats`` (everything the report and ``hybridrank ab report`` show),
``ab_test`` and ``interleaving_test`` (the one test of each design, for callers that repeat it, as
the A/A checks do). They select the experiment's searches and hand them to the method of its mode.

The methods and their reasoning live in their own modules: ``ltr.experiments.bucketed`` (per-user
Welch tests, verdicts, Holm–Šidák), ``ltr.experiments.randomization`` (the A/B p-value),
``ltr.experiments.interleaving`` (sign test, clustered preference), ``ltr.experiments.series`` (CTR
over time) and ``ltr.experiments.power`` (planning); the records they return are in
``ltr.experiments.results``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression
from ltr.experiments.bucketed import ab_arrays, arm_test, compare_variants
from ltr.experiments.credit import CreditRule
from ltr.experiments.interleaving import InterleaveUnit, interleaving_summary, team_summaries
from ltr.experiments.methods import interleaving_methods
from ltr.experiments.metrics import METRICS, experiment_impressions
from ltr.experiments.randomization import PERMUTATIONS
from ltr.experiments.results import ExperimentStats, InterleavingSummary, Interval
from ltr.experiments.series import Bucket, ctr_series
from ltr.experiments.store import Experiment


def compute_stats(impressions: Sequence[Impression], experiment: Experiment, *, primary: str = "ctr",
                  alpha: float = 0.05, power: float = 0.8, interleave_unit: InterleaveUnit = "impression",
                  bucket: Bucket | None = None, headline: CreditRule = "team_draft") -> ExperimentStats:
    """Everything the report shows. Raises ``DataError`` when the experiment has no traffic yet.

    ``headline``: the credit rule whose verdict leads a two-variant interleaving report (every rule's
    verdict is listed in ``methods`` either way)."""
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
        variants, comparisons, srm_p = compare_variants(imps, experiment, primary=primary, alpha=alpha, power=power)
        interleaving = None
        primary_comps = [c for c in comparisons if c.metric == primary]
        verdict = " ".join(c.verdict for c in primary_comps)
        if srm_p is not None and srm_p < 0.001:
            warning = (f"Sample-ratio mismatch (p={srm_p:.2g}): units per variant disagree with the configured "
                       "shares; assignment or logging is broken and the comparison is not trustworthy.")
            notes.append(warning)
            verdict = warning + " " + verdict
        methods = []
    else:
        variants = team_summaries(imps, experiment, alpha=alpha)
        comparisons, srm_p = [], None
        methods = interleaving_methods(imps, experiment, alpha=alpha, power=power)
        if len(experiment.variants) == 2:
            interleaving = interleaving_summary(imps, experiment, unit=interleave_unit, alpha=alpha, power=power)
            verdict = interleaving.verdict if headline == "team_draft" else next(
                m.verdict for m in methods if m.method == headline)
        else:  # multileaving: a verdict per pair
            interleaving = None
            notes.append("Team-draft multileaving credits a variant that shares documents with another variant "
                         "less than an equally good one that shares none (docs/feedback-loop.md): confirm a "
                         "pair's verdict with a two-variant interleaving experiment.")
            decided = [m.verdict for m in methods if m.significant]
            verdict = " ".join(decided) if decided else (
                f"No pair of the {len(experiment.variants)} variants differs significantly yet (Holm over "
                f"{len(methods)} pairs).")
    return ExperimentStats(experiment, alpha, power, primary, imps[0].timestamp, imps[-1].timestamp, len(imps),
                           units, ignored, variants, comparisons, interleaving, series, chosen, srm_p, verdict,
                           notes, methods, headline)


def interleaving_test(impressions: Sequence[Impression], experiment: Experiment, *,
                      unit: InterleaveUnit = "impression", alpha: float = 0.05,
                      power: float = 0.8) -> InterleavingSummary:
    """Wins/ties/losses, sign test and preference Δ of an interleaving experiment (as in ``compute_stats``)."""
    imps, _ = experiment_impressions(impressions, experiment)
    if not imps:
        raise DataError(f"experiment {experiment.id!r} has no traffic yet (no interleaved impressions)")
    return interleaving_summary(imps, experiment, unit=unit, alpha=alpha, power=power)


def ab_test(impressions: Sequence[Impression], experiment: Experiment, *, metric: str = "ctr",
            treatment: str | None = None, alpha: float = 0.05) -> tuple[float, Interval]:
    """(p-value, treatment − control with its interval) of one metric: the test ``compute_stats`` uses."""
    imps, _ = experiment_impressions(impressions, experiment)
    c = (arm_test(*ab_arrays(imps, experiment, metric, treatment), alpha=alpha, permutations=PERMUTATIONS)
         if imps else None)
    if c is None:
        return math.nan, Interval(math.nan, math.nan, math.nan)
    return c.p_value, c.diff
