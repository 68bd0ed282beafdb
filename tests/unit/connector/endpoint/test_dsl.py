"""Planning an app's search: rerank it (paging, headers, URL parameters, ext) or pass it through, and why."""

from __future__ import annotations

from typing import Any

import pytest

from connector.endpoint import dsl, upstream_bodies
from tests.support.search_plans import plan


def test_a_plain_search_is_planned_with_paging_and_headers() -> None:
    body = {"query": {"bool": {"must": {"match": {"title": "flu"}}, "filter": [{"term": {"y": 1}}]}},
            "from": 10, "size": 20, "aggs": {"a": {"terms": {"field": "y"}}}, "_source": ["title"]}
    result = plan(body, {"routing": "r1", "typed_keys": "true"})
    assert isinstance(result, dsl.SearchPlan)
    assert (result.query_text, result.from_, result.size, result.window) == ("flu", 10, 20, 100)
    assert result.filters == ({"term": {"y": 1}},)
    assert result.header == {"index": "docs", "routing": "r1"}
    assert result.url_params == {"typed_keys": "true"}


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
    ({"query": {"match": {"t": "x"}}, "size": True}, {}, "docs", "size/from not non-negative integers"),
    ({"query": {"match": {"t": "x"}}, "from": False}, {}, "docs", "size/from not non-negative integers"),
    ({"query": {"match": {"t": "x"}}}, {}, 7, "not exactly one index"),  # an _msearch header's "index": 7
    ({"query": {"match_all": {}}}, {}, "docs", "no query text"),
    ({"query": {"match": {"t": "x"}}, "ext": {"hybridrank": {"variant": "off"}}}, {}, "docs", "variant off"),
])
def test_passthrough_reasons(body: dict[str, Any], params: dict[str, str], index: Any, reason: str) -> None:
    assert plan(body, params, index) == dsl.Passthrough(reason)


def test_variant_off_header() -> None:
    assert plan({"query": {"match": {"t": "x"}}}, variant_header="off") == dsl.Passthrough("variant off")


@pytest.mark.parametrize(("from_", "size"), [(100, 10), (95, 10), (0, 101), (0, 10_000)])
def test_paging_beyond_the_window_is_judged_by_elasticsearch_then_rejected(from_: int, size: int) -> None:
    planned = plan({"query": {"match": {"t": "x"}}, "from": from_, "size": size})
    assert isinstance(planned, dsl.SearchPlan) and planned.beyond_window
    check = upstream_bodies.render_check(planned)  # Elasticsearch refuses beyond its own result window
    assert check is not None and (check["from"], check["size"]) == (from_, size)
    rejection = dsl.window_rejection(planned)
    assert rejection.status == 400 and rejection.error_type == "illegal_argument_exception"
    assert "[100]" in str(rejection) and f"[{from_ + size}]" in str(rejection)


@pytest.mark.parametrize(("params", "body", "expected"), [
    ({"explain": "true"}, {}, True), ({"explain": ""}, {}, True), ({}, {"explain": True}, True),
    ({"explain": "false"}, {}, False), ({}, {"explain": "yes"}, False), ({}, {"explain": {"a": 1}}, False)])
def test_elasticsearchs_explanation_is_asked_for_when_the_app_asks(params: dict[str, str], body: dict[str, object],
                                                                     expected: bool) -> None:
    planned = plan({"query": {"match": {"t": "x"}}, **body}, params=params)
    assert isinstance(planned, dsl.SearchPlan) and planned.es_explain is expected
    if "explain" in body:  # Elasticsearch judges the value (a string, an object: its own 400)
        check = upstream_bodies.render_check(planned)
        assert check is not None and check["explain"] == body["explain"]


def test_an_explain_parameter_that_is_not_a_boolean_goes_to_elasticsearch() -> None:
    assert isinstance(plan({"query": {"match": {"t": "x"}}}, params={"explain": "yes"}), dsl.Passthrough)
