"""The bodies sent upstream for a plan: the two legs (ids and scores only) and the page fetch."""

from __future__ import annotations

from connector.endpoint import dsl
from connector.endpoint.upstream_bodies import (
    knn_leg,
    lexical_leg,
    needs_page_fetch,
    page_body,
    page_mget,
    render_check,
)
from tests.support.search_plans import PROFILES, plan


def test_the_legs_of_a_plain_search() -> None:
    body = {"query": {"bool": {"must": {"match": {"title": "flu"}}, "filter": [{"term": {"y": 1}}]}},
            "from": 10, "size": 20, "aggs": {"a": {"terms": {"field": "y"}}}, "_source": ["title"]}
    result = plan(body, {"routing": "r1", "typed_keys": "true"})
    assert isinstance(result, dsl.SearchPlan)
    lexical = lexical_leg(result)
    ids_only = {"stored_fields": "_none_", "docvalue_fields": ["hybridrank_id"]}  # no stored-field read
    assert lexical == {"query": body["query"], "aggs": body["aggs"], "from": 0, "size": 100, **ids_only}
    knn = knn_leg(result, [0.5, 0.25], PROFILES["docs"])
    assert knn == {
        "knn": {"field": "embedding", "query_vector": [0.5, 0.25], "k": 100, "num_candidates": 200,
                "filter": [{"term": {"y": 1}}]},
        "size": 100, "track_total_hits": False, **ids_only,
    }


def test_the_page_fetch_renders_hits_as_the_app_asked() -> None:
    body = {"query": {"match": {"t": "x"}}, "highlight": {"fields": {"t": {}}}, "_source": ["t"],
            "docvalue_fields": ["y"], "runtime_mappings": {"r": {"type": "long"}}, "aggs": {"a": {}}}
    result = plan(body)
    assert isinstance(result, dsl.SearchPlan)
    assert needs_page_fetch(result)
    assert page_body(result, ["9", "3"]) == {
        "query": {"bool": {"filter": [{"ids": {"values": ["9", "3"]}}], "should": [{"match": {"t": "x"}}]}},
        "size": 2, "track_total_hits": False, "_source": ["t"], "docvalue_fields": ["y"],
        "highlight": {"fields": {"t": {}}}, "runtime_mappings": {"r": {"type": "long"}},
    }
    lexical = lexical_leg(result)
    assert "highlight" not in lexical and "_source" not in lexical
    assert lexical["docvalue_fields"] == ["hybridrank_id"] and lexical["stored_fields"] == "_none_"  # app's dropped
    assert lexical["runtime_mappings"] == body["runtime_mappings"] and lexical["aggs"] == {"a": {}}
    bare = plan({"query": {"match": {"t": "x"}}, "_source": False})
    assert isinstance(bare, dsl.SearchPlan) and not needs_page_fetch(bare)


def test_a_page_that_only_needs_source_is_an_mget() -> None:
    result = plan({"query": {"match": {"t": "x"}}, "_source": {"excludes": ["v"]}})
    assert isinstance(result, dsl.SearchPlan)
    assert page_mget(result, ["1", "2"]) == {"docs": [
        {"_index": "docs", "_id": "1", "_source": {"excludes": ["v"]}},
        {"_index": "docs", "_id": "2", "_source": {"excludes": ["v"]}},
    ]}
    for body in ({"query": {"match": {"t": {"query": "x", "_name": "n"}}}},
                 {"query": {"match": {"t": "x"}}, "post_filter": {"term": {"c": {"value": "a", "_name": "n"}}}},
                 {"query": {"match": {"t": "x"}}, "highlight": {"fields": {"t": {}}}}):
        needs_search = plan(body)
        assert isinstance(needs_search, dsl.SearchPlan) and page_mget(needs_search, ["1"]) is None
    routed = plan({"query": {"match": {"t": "x"}}}, {"routing": "r"})
    assert isinstance(routed, dsl.SearchPlan) and page_mget(routed, ["1"]) is None


def test_render_keys_are_checked_by_elasticsearch_on_no_document() -> None:
    for source in ({}, {"_source": False}, {"_source": ["title"]}, {"_source": {"includes": "t*", "excludes": []}}):
        plain = plan({"query": {"match": {"text": "x"}}, **source})
        assert isinstance(plain, dsl.SearchPlan) and render_check(plain) is None, source
    odd = plan({"query": {"match": {"text": "x"}}, "_source": 5})
    assert isinstance(odd, dsl.SearchPlan) and render_check(odd) == {
        "_source": 5, "query": {"match_none": {}}, "size": 1, "track_total_hits": False}
    shaped = plan({"query": {"match": {"text": "x"}}, "explain": None, "highlight": {"fields": {"text": {}}},
                   "runtime_mappings": {"r": {"type": "long"}}, "aggs": {"a": {"terms": {"field": "c"}}}})
    assert isinstance(shaped, dsl.SearchPlan)
    assert render_check(shaped) == {"explain": None, "highlight": {"fields": {"text": {}}},
                                    "runtime_mappings": {"r": {"type": "long"}}, "query": {"match_none": {}},
                                    "size": 1, "track_total_hits": False}
