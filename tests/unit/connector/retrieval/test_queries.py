"""The query builders are pure: compare the dicts they return."""

from connector.retrieval import queries

FIELDS = {"title": 2.0, "text": 1.0}
FILTER = {"term": {"lang": "en"}}


def test_field_list_leaves_unit_boost_implicit() -> None:
    assert queries.field_list(FIELDS) == ["title^2", "text"]


def test_bm25_body_multi_field_with_filter() -> None:
    body = queries.bm25_body("heart attack", FIELDS, size=100, filters=[FILTER])
    assert body == {
        "query": {
            "bool": {
                "must": [
                    {
                        "multi_match": {
                            "query": "heart attack",
                            "fields": ["title^2", "text"],
                            "type": "best_fields",
                            "tie_breaker": 0.5,
                        }
                    }
                ],
                "filter": [FILTER],
            }
        },
        "size": 100,
        "_source": False,
        "track_total_hits": False,
    }


def test_bm25_body_without_filter_is_the_bare_clause() -> None:
    body = queries.bm25_body("x", {"text": 1.0}, size=5, source=["title"])
    assert body["query"] == {"multi_match": {"query": "x", "fields": ["text"], "type": "best_fields",
                                             "tie_breaker": 0.5}}
    assert body["_source"] == ["title"]


def test_knn_body_filters_inside_the_graph_search() -> None:
    body = queries.knn_body([0.5, 0.25], "embedding", k=10, num_candidates=50, filters=[FILTER])
    assert body == {
        "knn": {"field": "embedding", "query_vector": [0.5, 0.25], "k": 10, "num_candidates": 50,
                "filter": [FILTER]},
        "size": 10,
        "_source": False,
        "track_total_hits": False,
    }


def test_knn_num_candidates_never_below_k() -> None:
    assert queries.knn_section([1.0], "v", k=100, num_candidates=10)["num_candidates"] == 100


def test_es_hybrid_body_has_query_and_knn_with_the_same_filters() -> None:
    body = queries.es_hybrid_body("q", [1.0, 0.0], FIELDS, "embedding", size=20, num_candidates=40,
                                  filters=[FILTER], knn_boost=2.0)
    assert body["query"]["bool"]["filter"] == [FILTER]
    assert body["knn"]["filter"] == [FILTER]
    assert body["knn"]["k"] == 20 and body["knn"]["boost"] == 2.0
    assert body["size"] == 20


def test_vector_floats_are_each_component_as_a_python_float() -> None:
    import numpy as np

    vector = np.random.default_rng(3).standard_normal(384).astype(np.float32)
    got = queries.vector_floats(vector)
    assert got == [float(x) for x in vector] and all(type(x) is float for x in got)
    assert queries.vector_floats([1, 2.5]) == [1.0, 2.5]
    assert queries.knn_section(vector, "v", k=3, num_candidates=9)["query_vector"] == got
