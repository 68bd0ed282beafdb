"""The CTR time series: a point per bucket and variant, each inside its interval."""

from __future__ import annotations

from datetime import timedelta

from ltr.experiments.stats import compute_stats
from tests.support.ab_synthetic import START, ab_experiment, synthetic_impressions


def test_ctr_series_has_a_point_per_bucket_and_variant() -> None:
    exp = ab_experiment()
    imps = synthetic_impressions(exp, seed=4, users=150, hours=24 * 5)
    st = compute_stats(imps, exp)
    assert st.bucket == "day"
    days = {(i.timestamp - START) // timedelta(days=1) for i in imps}
    assert len(st.series) == 2 * len(days)
    assert sum(p.impressions for p in st.series) == len(imps)
    for p in st.series:
        assert p.ctr.low <= p.ctr.value <= p.ctr.high
    hourly = compute_stats(imps, exp, bucket="hour")
    assert hourly.bucket == "hour" and len(hourly.series) > len(st.series)
