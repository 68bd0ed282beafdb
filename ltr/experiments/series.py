"""The CTR time series of an experiment: one point per time bucket and variant (or team), with its interval.

The report plots it as ``ctr-over-time``, so a reader sees whether a difference holds over the run.
Each point is computed like every other number of the statistics: the mean over the users active
in that bucket of their CTR, with a t interval over those users.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from ltr.clicks.impressions import Impression
from ltr.experiments.metrics import encode_units, impression_metrics, per_unit_means, unit_mean_interval
from ltr.experiments.results import SeriesPoint
from ltr.experiments.store import Experiment
from ltr.experiments.team_draft import team_label

Bucket = Literal["minute", "hour", "day"]


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
    codes = encode_units([i.unit for i in imps])
    if exp.mode == "ab":
        lines = [(v.name, np.array([i.variant == v.name for i in imps]),
                  np.array([impression_metrics(i)["ctr"] for i in imps])) for v in exp.variants]
    else:
        everyone = np.ones(len(imps), dtype=bool)
        lines = [(v.name, everyone, np.array([impression_metrics(i, team)["ctr"] for i in imps]))
                 for team, v in zip(map(team_label, range(len(exp.variants))), exp.variants, strict=True)]
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
