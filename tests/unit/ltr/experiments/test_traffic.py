"""Experiment traffic: the status aggregation is a plain search body (no Elasticsearch needed)."""

from __future__ import annotations

from ltr.experiments.traffic import traffic_query


def test_traffic_query_is_a_plain_aggregation() -> None:
    body = traffic_query(["e1", "e2"])
    assert body["size"] == 0
    assert {"terms": {"experiment": ["e1", "e2"]}} in body["query"]["bool"]["filter"]
    assert body["aggs"]["experiments"]["aggs"]["users"] == {"cardinality": {"field": "user_id"}}
