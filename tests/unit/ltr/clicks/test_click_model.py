"""Click statistics: smoothing, windows, persistence, the ClickStats protocol."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hybridrank.config import Settings
from hybridrank.errors import DataError, HybridRankError
from ltr.clicks.click_model import (
    ClickStatistics,
    aggregate_clicks,
    click_stats_path,
    in_window,
    load_click_stats,
    read_click_stats,
    resolve_window,
    write_click_stats,
)
from ltr.clicks.impressions import Impression, Shown, impressions_from_events
from tests.support.click_logs import T0, simulate


def _imp(rid: str, query: str, shown: list[str], clicked: set[str], when: datetime = T0) -> Impression:
    imp = Impression(rid, when, "idx", query, [Shown(d, i + 1) for i, d in enumerate(shown)])
    imp.clicks = {d: when for d in clicked}
    return imp


def test_smoothing_math_by_hand() -> None:
    theta = {1: 1.0, 2: 0.5}
    imps = [_imp("r1", "q", ["a", "b"], {"a"}), _imp("r2", "q", ["a", "b"], {"b"}),
            _imp("r3", "Q ", ["b", "a"], set())]
    stats = ClickStatistics.build(imps, theta, prior_weight=2.0)
    a, b = stats.pairs[("q", "a")], stats.pairs[("q", "b")]
    assert (a.impressions, a.clicks, a.expected) == (3, 1, 2.5)
    assert (b.impressions, b.clicks, b.expected) == (3, 1, 2.0)
    p0 = 2 / 4.5
    assert stats.prior_ctr == pytest.approx(p0)
    assert stats.ctr("q", "a") == pytest.approx((1 + 2 * p0) / (2.5 + 2))
    assert stats.ctr("q", "b") == pytest.approx((1 + 2 * p0) / (2.0 + 2))
    # debiasing: same clicks, but b was mostly shown lower, so its CTR is higher
    assert stats.ctr("q", "b") > stats.ctr("q", "a")  # type: ignore[operator]
    unsmoothed = ClickStatistics.build(imps, theta, prior_weight=0.0)
    assert unsmoothed.ctr("q", "a") == pytest.approx(1 / 2.5)


def test_ctr_protocol_and_nan_semantics() -> None:
    from connector.retrieval.candidates import Candidate
    from features.base import ClickStats, FeatureContext
    from features.ctr import ClickThroughRate
    from hybridrank.config import IndexConfig

    stats = ClickStatistics.build([_imp("r1", "Covid  Vaccine", ["a", "b"], set()),
                                   _imp("r2", "other", ["c"], {"c"})], {1: 1.0, 2: 0.6}, prior_weight=1.0)
    assert isinstance(stats, ClickStats)
    assert stats.ctr("covid vaccine", "a") is not None  # shown, never clicked: evidence, a low rate
    assert stats.ctr("covid vaccine", "c") is None  # c was shown, but never under this query
    assert stats.doc_ctr("c") is not None and stats.doc_ctr("zzz") is None
    assert stats.ctr("covid vaccine", "a") < stats.ctr("other", "c")  # type: ignore[operator]

    feature = ClickThroughRate()

    def value(query: str, doc: str) -> float:
        ctx = FeatureContext(query_text=query, query_vector=None, request_time=T0, index_config=IndexConfig(),
                             click_stats=stats)
        return feature.value(ctx, Candidate(doc))

    assert value("  COVID vaccine", "a") == pytest.approx(stats.ctr("covid vaccine", "a"))
    assert math.isnan(value("covid vaccine", "c"))
    assert math.isnan(value("never asked", "a"))


def test_resolve_window() -> None:
    as_of = T0 + timedelta(days=10)
    assert resolve_window(as_of=as_of, window_days=3) == (as_of - timedelta(days=3), as_of)
    assert resolve_window() == (None, None)
    assert resolve_window(as_of=as_of, since=T0) == (T0, as_of)
    with pytest.raises(HybridRankError, match="as-of"):
        resolve_window(window_days=3)
    with pytest.raises(HybridRankError, match="empty window"):
        resolve_window(since=as_of, until=T0)


def test_aggregate_counts_only_the_window_and_until_is_exclusive() -> None:
    imps = [_imp(f"r{d}", "q", ["a", "b"], {"a"} if d % 2 else {"b"}, T0 + timedelta(days=d)) for d in range(10)]
    assert [i.request_id for i in in_window(imps, T0 + timedelta(days=2), T0 + timedelta(days=4))] == ["r2", "r3"]
    stats, model = aggregate_clicks(imps, prior_weight=1.0, window_days=4, as_of=T0 + timedelta(days=9))
    assert stats.pairs[("q", "a")].impressions == 4  # days 5, 6, 7, 8 (day 9 == as_of is excluded)
    assert stats.since == T0 + timedelta(days=5) and stats.until == T0 + timedelta(days=9)
    assert stats.info["impressions"] == 4 and stats.clicks == 4
    assert model.examination[1] == 1.0
    with pytest.raises(DataError, match="no impressions between"):
        aggregate_clicks(imps, prior_weight=1.0, since=T0 + timedelta(days=30))


def test_aggregate_from_event_dicts_reports_orphans() -> None:
    events: list[dict[str, Any]] = [
        {"type": "impression", "@timestamp": "2025-03-01T00:00:00Z", "request_id": "r1", "index": "idx",
         "query": "q", "hits": [{"doc_id": "a", "position": 1}, {"doc_id": "b", "position": 2}]},
        {"type": "click", "@timestamp": "2025-03-01T00:00:05Z", "request_id": "r1", "doc_id": "b"},
        {"type": "click", "@timestamp": "2025-03-01T00:00:06Z", "request_id": "gone", "doc_id": "b"},
    ]
    impressions, orphans = impressions_from_events(events)
    assert orphans == 1
    stats, _ = aggregate_clicks(impressions, prior_weight=0.0)
    assert stats.pairs[("q", "b")].clicks == 1 and stats.pairs[("q", "a")].clicks == 0


def test_persistence_round_trip(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert load_click_stats(settings, "idx") is None
    impressions, _ = simulate(queries=3, per_query=40)
    stats, _ = aggregate_clicks(impressions, prior_weight=5.0, as_of=T0 + timedelta(days=1), index="idx")
    path = write_click_stats(stats, click_stats_path(settings, "idx"))
    assert path == tmp_path / "clicks" / "idx.json"
    assert [p.name for p in path.parent.iterdir()] == ["idx.json"]  # no temporary file left behind
    again = load_click_stats(settings, "idx")
    assert again is not None
    assert again.pairs == stats.pairs and again.docs == stats.docs
    assert again.examination == stats.examination and again.until == stats.until and again.since is None
    for pair in list(stats.pairs)[:20]:
        assert again.ctr(*pair) == stats.ctr(*pair)
    # rewriting replaces atomically
    write_click_stats(ClickStatistics.build(impressions[:5], stats.examination, prior_weight=1.0),
                      click_stats_path(settings, "idx"))
    assert load_click_stats(settings, "idx").impressions == 50  # type: ignore[union-attr]


def test_unreadable_or_foreign_stats_are_data_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="unreadable"):
        read_click_stats(bad)
    bad.write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(DataError, match="format 99"):
        read_click_stats(bad)
    with pytest.raises(HybridRankError):
        click_stats_path(Settings(home=tmp_path), "../escape")
