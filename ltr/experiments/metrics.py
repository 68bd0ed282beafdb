"""The metrics of one search, an experiment's searches, and the per-user values every statistic starts from.

A search's metrics (CTR as clicks per search, clicks@k, abandonment, MRR) are first averaged over
each user's searches: the user, not the search, is the unit that is randomised and independent
(``ltr.experiments.bucketed`` says why and what the alternative cost). The CTR reported everywhere
(variant summaries, team rows, the time series) is thus "the average user's CTR", not pooled
clicks / searches, with a t interval over users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ltr.clicks.impressions import Impression
from ltr.experiments.results import Interval
from ltr.experiments.store import Experiment

METRICS: tuple[str, ...] = ("ctr", "clicks@1", "clicks@3", "clicks@10", "abandonment", "mrr")
METRIC_LABELS: dict[str, str] = {
    "ctr": "CTR", "clicks@1": "clicks@1", "clicks@3": "clicks@3", "clicks@10": "clicks@10",
    "abandonment": "abandonment", "mrr": "MRR",
}
LOWER_IS_BETTER = frozenset({"abandonment"})


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


def experiment_impressions(impressions: Sequence[Impression], experiment: Experiment) -> tuple[list[Impression], int]:
    """This experiment's impressions in time order, and how many named an unknown variant."""
    names = {v.name for v in experiment.variants}
    own = [i for i in impressions if i.experiment == experiment.id]
    if experiment.mode == "interleave":
        kept = [i for i in own if any(h.team is not None for h in i.hits)]
    else:
        kept = [i for i in own if i.variant in names]
    return sorted(kept, key=lambda i: (i.timestamp, i.request_id)), len(own) - len(kept)


# -- per-user values (statsmodels) ----------------------------------------------------------------
def encode_units(values: Sequence[str]) -> np.ndarray:
    """Each search's unit as an integer code (0 .. units−1), for ``per_unit_means`` and clustering."""
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
