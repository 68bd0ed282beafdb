"""Reading an app's search request: query text, filters, passthrough decisions, leg bodies."""

from __future__ import annotations

from typing import Any

import pytest

from connector.endpoint import dsl
from connector.endpoint.wire import RequestRejected
from hybridrank.config import IndexConfig

PROFILES = {"docs": IndexConfig(candidate_window=100, knn_num_candidates=200)}


def plan(body: dict[str, Any], params: dict[str, str] | None = None, index: str = "docs",
         **kw: Any) -> dsl.SearchPlan | dsl.Passthrough:
    return dsl.plan_search(index, body, params or {}, PROFILES, **kw)


@pytest.mark.parametrize(("query", "text"), [
    ({"match": {"title": "heart attack"}}, "heart attack"),
    ({"match": {"title": {"query": "heart attack", "operator": "and"}}}, "heart attack"),
    ({"match_phrase": {"text": {"query": "gene therapy", "slop": 2}}}, "gene therapy"),
    ({"multi_match": {"query": "vitamin d", "fields": ["title^2", "text"]}}, "vitamin d"),
    ({"combined_fields": {"query": "stem cells", "fields": ["title", "text"]}}, "stem cells"),
    ({"query_string": {"query": "title:(covid AND vaccine) OR \"mrna\"~2 boost^3"}}, "covid vaccine mrna boost"),
    ({"simple_query_string": {"query": "+diabetes -type1 insulin*"}}, "diabetes type1 insulin"),
    ({"bool": {"must": [{"match": {"title": "a b"}}], "should": [{"match": {"text": "c"}}]}}, "a b c"),
    ({"bool": {"should": [{"match": {"title": "same"}}, {"match": {"text": "same"}}]}}, "same"),
    ({"function_score": {"query": {"match": {"title": "inner"}}, "functions": []}}, "inner"),
    ({"dis_max": {"queries": [{"match": {"title": "x"}}, {"match": {"text": "y"}}]}}, "x y"),
    ({"boosting": {"positive": {"match": {"title": "pos"}}, "negative": {"match": {"title": "neg"}},
                   "negative_boost": 0.5}}, "pos"),
])
def test_query_text_from_text_clauses(query: dict[str, Any], text: str) -> None:
    assert dsl.extract_query(query)[0] == text


def test_filters_come_from_filter_must_not_and_non_text_must_clauses() -> None:
    query = {"bool": {
        "must": [{"match": {"title": "fever"}}, {"range": {"year": {"gte": 2000}}},
                 {"bool": {"must": [{"match": {"text": "child"}}], "filter": [{"term": {"lang": "en"}}]}}],
        "should": [{"term": {"tag": "boost-only"}}],
        "filter": {"term": {"status": "published"}},
        "must_not": [{"term": {"retracted": True}}],
    }}
    text, filters = dsl.extract_query(query)
    assert text == "fever child"
    assert {"range": {"year": {"gte": 2000}}} in filters
    assert {"term": {"lang": "en"}} in filters  # a filter under a must holds for the whole query
    assert {"term": {"status": "published"}} in filters
    assert {"bool": {"must_not": [{"term": {"retracted": True}}]}} in filters
    assert {"term": {"tag": "boost-only"}} not in filters  # should clauses only score


def test_filters_inside_should_do_not_restrict() -> None:
    query = {"bool": {"should": [{"bool": {"must": [{"match": {"title": "a"}}], "filter": [{"term": {"x": 1}}]}}]}}
    assert dsl.extract_query(query) == ("a", [])


@pytest.mark.parametrize("query", [None, {}, {"match_all": {}}, {"term": {"id": "1"}},
                                   {"bool": {"filter": [{"term": {"x": 1}}]}}])
def test_no_text_means_no_text(query: Any) -> None:
    assert dsl.extract_query(query) == ("", [])


def test_a_plain_search_is_planned_with_paging_and_headers() -> None:
    body = {"query": {"bool": {"must": {"match": {"title": "flu"}}, "filter": [{"term": {"y": 1}}]}},
            "from": 10, "size": 20, "aggs": {"a": {"terms": {"field": "y"}}}, "_source": ["title"]}
    result = plan(body, {"routing": "r1", "typed_keys": "true"})
    assert isinstance(result, dsl.SearchPlan)
    assert (result.query_text, result.from_, result.size, result.window) == ("flu", 10, 20, 100)
    assert result.filters == ({"term": {"y": 1}},)
    assert result.header == {"index": "docs", "routing": "r1"}
    assert result.url_params == {"typed_keys": "true"}
    lexical = dsl.lexical_leg(result)
    ids_only = {"stored_fields": "_none_", "docvalue_fields": ["hybridrank_id"]}  # no stored-field read
    assert lexical == {"query": body["query"], "aggs": body["aggs"], "from": 0, "size": 100, **ids_only}
    knn = dsl.knn_leg(result, [0.5, 0.25], PROFILES["docs"])
    assert knn == {
        "knn": {"field": "embedding", "query_vector": [0.5, 0.25], "k": 100, "num_candidates": 200,
                "filter": [{"term": {"y": 1}}]},
        "size": 100, "track_total_hits": False, **ids_only,
    }


def test_post_filter_also_filters_the_knn_leg() -> None:
    result = plan({"query": {"match": {"t": "x"}}, "post_filter": {"term": {"c": "a"}}})
    assert isinstance(result, dsl.SearchPlan)
    assert result.filters == ({"term": {"c": "a"}},)


def test_url_parameters_merge_into_the_body() -> None:
    result = plan({"query": {"match": {"t": "x"}}, "size": 3},
                  {"size": "7", "from": "2", "_source_includes": "a,b", "track_total_hits": "true"})
    assert isinstance(result, dsl.SearchPlan)
    assert (result.size, result.from_) == (7, 2)
    assert result.body["_source"] == {"includes": ["a", "b"]}
    assert result.body["track_total_hits"] is True


def test_explicit_ext_query_text_wins_and_ext_is_removed() -> None:
    body = {"query": {"bool": {"filter": [{"term": {"c": 1}}]}},
            "ext": {"hybridrank": {"query_text": "explicit words", "variant": "b", "explain": True}}}
    result = plan(body)
    assert isinstance(result, dsl.SearchPlan)
    assert (result.query_text, result.variant, result.explain) == ("explicit words", "b", True)
    assert "ext" not in result.body and "ext" in body
    assert dsl.pop_ext({"ext": {"other": 1, "hybridrank": {}}}) == ({"ext": {"other": 1}}, {})


@pytest.mark.parametrize(("body", "params", "index", "reason"), [
    ({"query": {"match": {"t": "x"}}}, {}, "other", "index without a ranking profile"),
    ({"query": {"match": {"t": "x"}}}, {}, "docs,other", "not exactly one index"),
    ({"query": {"match": {"t": "x"}}, "sort": [{"year": "desc"}]}, {}, "docs", "body has sort"),
    ({"query": {"match": {"t": "x"}}, "search_after": [1]}, {}, "docs", "body has search_after"),
    ({"query": {"match": {"t": "x"}}, "knn": {"field": "v"}}, {}, "docs", "body has knn"),
    ({"query": {"match": {"t": "x"}}, "rescore": {}}, {}, "docs", "body has rescore"),
    ({"query": {"match": {"t": "x"}}}, {"scroll": "1m"}, "docs", "query parameter scroll"),
    ({"query": {"match": {"t": "x"}}}, {"sort": "year:desc"}, "docs", "query parameter sort"),
    ({"query": {"match": {"t": "x"}}}, {"q": "x"}, "docs", "query parameter q"),
    ({"query": {"match": {"t": "x"}}, "size": 0}, {}, "docs", "size 0"),
    ({"query": {"match": {"t": "x"}}, "size": -1}, {}, "docs", "size/from not non-negative integers"),
    ({"query": {"match_all": {}}}, {}, "docs", "no query text"),
    ({"query": {"match": {"t": "x"}}, "ext": {"hybridrank": {"variant": "off"}}}, {}, "docs", "variant off"),
])
def test_passthrough_reasons(body: dict[str, Any], params: dict[str, str], index: str, reason: str) -> None:
    assert plan(body, params, index) == dsl.Passthrough(reason)


def test_variant_off_header() -> None:
    assert plan({"query": {"match": {"t": "x"}}}, variant_header="off") == dsl.Passthrough("variant off")


@pytest.mark.parametrize(("from_", "size"), [(100, 10), (95, 10), (0, 101), (0, 10_000)])
def test_paging_beyond_the_window_is_rejected(from_: int, size: int) -> None:
    with pytest.raises(RequestRejected) as caught:
        plan({"query": {"match": {"t": "x"}}, "from": from_, "size": size})
    assert caught.value.status == 400 and caught.value.error_type == "illegal_argument_exception"
    assert "[100]" in str(caught.value) and f"[{from_ + size}]" in str(caught.value)


def test_the_page_fetch_renders_hits_as_the_app_asked() -> None:
    body = {"query": {"match": {"t": "x"}}, "highlight": {"fields": {"t": {}}}, "_source": ["t"],
            "docvalue_fields": ["y"], "runtime_mappings": {"r": {"type": "long"}}, "aggs": {"a": {}}}
    result = plan(body)
    assert isinstance(result, dsl.SearchPlan)
    assert dsl.needs_page_fetch(result)
    assert dsl.page_body(result, ["9", "3"]) == {
        "query": {"bool": {"filter": [{"ids": {"values": ["9", "3"]}}], "should": [{"match": {"t": "x"}}]}},
        "size": 2, "track_total_hits": False, "_source": ["t"], "docvalue_fields": ["y"],
        "highlight": {"fields": {"t": {}}}, "runtime_mappings": {"r": {"type": "long"}},
    }
    lexical = dsl.lexical_leg(result)
    assert "highlight" not in lexical and "_source" not in lexical
    assert lexical["docvalue_fields"] == ["hybridrank_id"] and lexical["stored_fields"] == "_none_"  # app's dropped
    assert lexical["runtime_mappings"] == body["runtime_mappings"] and lexical["aggs"] == {"a": {}}
    bare = plan({"query": {"match": {"t": "x"}}, "_source": False})
    assert isinstance(bare, dsl.SearchPlan) and not dsl.needs_page_fetch(bare)


def test_a_page_that_only_needs_source_is_an_mget() -> None:
    result = plan({"query": {"match": {"t": "x"}}, "_source": {"excludes": ["v"]}})
    assert isinstance(result, dsl.SearchPlan)
    assert dsl.page_mget(result, ["1", "2"]) == {"docs": [
        {"_index": "docs", "_id": "1", "_source": {"excludes": ["v"]}},
        {"_index": "docs", "_id": "2", "_source": {"excludes": ["v"]}},
    ]}
    for body in ({"query": {"match": {"t": {"query": "x", "_name": "n"}}}},
                 {"query": {"match": {"t": "x"}}, "highlight": {"fields": {"t": {}}}}):
        needs_search = plan(body)
        assert isinstance(needs_search, dsl.SearchPlan) and dsl.page_mget(needs_search, ["1"]) is None
    routed = plan({"query": {"match": {"t": "x"}}}, {"routing": "r"})
    assert isinstance(routed, dsl.SearchPlan) and dsl.page_mget(routed, ["1"]) is None
