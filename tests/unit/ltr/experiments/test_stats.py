"""The entry points: no traffic is an error; other experiments' and unknown variants' searches are left out."""

from __future__ import annotations

import pytest

from hybridrank.errors import DataError
from ltr.experiments.stats import compute_stats
from tests.support.ab_synthetic import ab_experiment, synthetic_impressions


def test_no_traffic_and_foreign_impressions() -> None:
    exp = ab_experiment()
    with pytest.raises(DataError, match="no traffic yet"):
        compute_stats([], exp)
    other = synthetic_impressions(ab_experiment("other"), seed=1, users=10)
    with pytest.raises(DataError, match="no traffic yet"):
        compute_stats(other, exp)
    mine = synthetic_impressions(exp, seed=1, users=30)
    mine[0].variant = "Z"
    st = compute_stats(mine + other, exp)
    assert st.impressions == len(mine) - 1 and st.ignored == 1 and st.notes
