"""The query text and filters read from an app's query DSL."""

from __future__ import annotations

from typing import Any

import pytest

from connector.endpoint.query_text import extract_query


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
    assert extract_query(query)[0] == text


def test_filters_come_from_filter_must_not_and_non_text_must_clauses() -> None:
    query = {"bool": {
        "must": [{"match": {"title": "fever"}}, {"range": {"year": {"gte": 2000}}},
                 {"bool": {"must": [{"match": {"text": "child"}}], "filter": [{"term": {"lang": "en"}}]}}],
        "should": [{"term": {"tag": "boost-only"}}],
        "filter": {"term": {"status": "published"}},
        "must_not": [{"term": {"retracted": True}}],
    }}
    text, filters = extract_query(query)
    assert text == "fever child"
    assert {"range": {"year": {"gte": 2000}}} in filters
    assert {"term": {"lang": "en"}} in filters  # a filter under a must holds for the whole query
    assert {"term": {"status": "published"}} in filters
    assert {"bool": {"must_not": [{"term": {"retracted": True}}]}} in filters
    assert {"term": {"tag": "boost-only"}} not in filters  # should clauses only score


def test_filters_inside_should_do_not_restrict() -> None:
    query = {"bool": {"should": [{"bool": {"must": [{"match": {"title": "a"}}], "filter": [{"term": {"x": 1}}]}}]}}
    assert extract_query(query) == ("a", [])


@pytest.mark.parametrize("query", [None, {}, {"match_all": {}}, {"term": {"id": "1"}},
                                   {"bool": {"filter": [{"term": {"x": 1}}]}}])
def test_no_text_means_no_text(query: Any) -> None:
    assert extract_query(query) == ("", [])
