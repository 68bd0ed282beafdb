"""Search metrics: one search's CTR, clicks@k, abandonment and MRR, checked by hand."""

from __future__ import annotations

from ltr.clicks.impressions import Impression, Shown
from ltr.experiments.metrics import impression_metrics
from tests.support.ab_synthetic import START


def test_impression_metrics_by_hand() -> None:
    t = START
    imp = Impression("r", t, "idx", "q", [Shown("x", 1, "A"), Shown("y", 2, "B"), Shown("z", 3, "B")],
                     clicks={"y": t, "z": t})
    m = impression_metrics(imp)
    assert m == {"ctr": 2.0, "clicks@1": 0.0, "clicks@3": 1.0, "clicks@10": 1.0, "abandonment": 0.0, "mrr": 0.5}
    assert impression_metrics(imp, "A")["ctr"] == 0.0
    assert impression_metrics(imp, "B")["mrr"] == 0.5
    none = Impression("r2", t, "idx", "q", [Shown("x", 1)])
    assert impression_metrics(none)["abandonment"] == 1.0 and impression_metrics(none)["mrr"] == 0.0
