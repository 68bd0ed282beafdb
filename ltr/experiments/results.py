"""What the experiment statistics return: plain records, and how their numbers read in a verdict.

Every method module fills these (``ltr.experiments.bucketed`` the variant summaries and comparisons,
``ltr.experiments.interleaving`` the interleaving summary, ``ltr.experiments.series`` the series
points, ``ltr.experiments.power`` the power estimate); ``ltr.experiments.stats`` gathers them into
one ``ExperimentStats``, which the CLI prints and ``ltr.experiments.report`` renders. They are kept
apart from the methods because all of these share them, while none needs another's computations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ltr.experiments.store import Experiment


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
class MethodVerdict:
    """One comparison method's answer on an interleaving experiment (``ltr.experiments.methods``):
    a credit rule on one pair of variants, with its interval, the searches it needs and its power curve."""

    method: str  # a credit rule of ltr.experiments.credit, or "multileave"
    test: str  # what was tested, in words
    control: str
    treatment: str
    searches: int
    effect: Interval  # per-search preference for ``treatment`` (> 0 favours it)
    p_value: float
    p_adjusted: float  # Holm over the pairs of a multileaving experiment, else = p_value
    significant: bool
    sessions_needed: int | None  # for ``power`` at alpha, for the observed effect
    more_sessions_needed: int | None
    power_curve: dict[int, float]  # searches -> power for the observed effect
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
    methods: list[MethodVerdict] = field(default_factory=list)  # interleaving: every method's / pair's verdict
    headline: str = "team_draft"  # two-variant interleaving: the credit rule whose verdict is ``verdict``

    @property
    def significant(self) -> bool:
        """Whether the verdict's test decided: the headline credit rule (the sign test by default), or any
        treatment on the primary metric."""
        if self.interleaving is not None:
            if self.headline != "team_draft":
                return any(m.significant for m in self.methods if m.method == self.headline)
            return self.interleaving.significant
        if self.experiment.mode == "interleave":  # multileaving: any pair
            return any(m.significant for m in self.methods)
        return any(c.significant for c in self.comparisons if c.metric == self.primary)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["experiment"] = self.experiment.to_json()
        return _jsonable(out)


@dataclass(frozen=True)
class PowerEstimate:
    """Searches an experiment of this traffic needs to reach ``power`` (see ``sessions_for_power``)."""

    sessions: int | None  # None: not reached up to ``max_sessions``
    power: float
    alpha: float
    resamples: int
    direction: int  # +1: the second variant wins in the full data, -1: the first
    curve: dict[int, float]  # searches -> estimated power (share of resamples significant in ``direction``)


# -- numbers in verdicts ----------------------------------------------------------------------------
def fmt_signed(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.{digits}f}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p=n/a"
    return "p<0.0001" if p < 1e-4 else f"p={p:.4f}"


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
