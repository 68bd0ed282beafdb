"""Training pairs: positives from the judgments, hard negatives from the window; a document's text."""

from __future__ import annotations

from ltr.cross_encoder.pairs import build_pairs, doc_text


def test_hard_negatives_exclude_relevant_docs_and_keep_window_order() -> None:
    qrels = {"q1": {"d1": 1, "d5": 0}, "q2": {"d9": 2, "d8": 1}}
    windows = {"q1": ["d1", "d2", "d5", "d3", "d4"], "q2": ["d8", "d7", "d9", "d6"]}
    pairs = build_pairs(qrels, windows, hard_negatives=2, seed=1)
    by_q: dict[str, dict[str, float]] = {}
    for p in pairs:
        by_q.setdefault(p.qid, {})[p.doc_id] = p.label
    # q1: d1 positive (label = grade / max grade); negatives: the first two non-relevant window docs
    # (d5, judged 0, counts as a negative)
    assert by_q["q1"] == {"d1": 0.5, "d2": 0.0, "d5": 0.0}  # grade 1 of max 2
    # q2: graded labels scaled by the max grade; d8 and d9 are never negatives
    assert by_q["q2"] == {"d9": 1.0, "d8": 0.5, "d7": 0.0, "d6": 0.0}
    assert len(pairs) == 7


def test_positive_outside_the_window_is_still_a_positive() -> None:
    pairs = build_pairs({"q": {"far": 1}}, {"q": ["a", "b", "c"]}, hard_negatives=5)
    assert {(p.doc_id, p.label) for p in pairs} == {("far", 1.0), ("a", 0.0), ("b", 0.0), ("c", 0.0)}


def test_max_pairs_keeps_whole_queries_and_is_seeded() -> None:
    qrels = {f"q{i}": {f"r{i}": 1} for i in range(20)}
    windows = {f"q{i}": [f"n{i}_{j}" for j in range(10)] for i in range(20)}
    pairs = build_pairs(qrels, windows, hard_negatives=3, max_pairs=10, seed=7)
    assert len(pairs) == 8  # two whole queries of 4 pairs; a third would exceed 10
    per_query: dict[str, int] = {}
    for p in pairs:
        per_query[p.qid] = per_query.get(p.qid, 0) + 1
    assert sorted(per_query.values()) == [4, 4]
    assert pairs == build_pairs(qrels, windows, hard_negatives=3, max_pairs=10, seed=7)
    assert pairs != build_pairs(qrels, windows, hard_negatives=3, max_pairs=10, seed=8)


def test_queries_without_a_relevant_doc_give_no_pairs() -> None:
    assert build_pairs({"q": {"d": 0}}, {"q": ["x", "y"]}, hard_negatives=2) == []


def test_doc_text_joins_non_empty_fields_in_order() -> None:
    assert doc_text({"title": " T ", "text": "body", "x": 1}, ["title", "text"]) == "T body"
    assert doc_text({"text": "body", "title": ""}, ["title", "text"]) == "body"
    assert doc_text({}, ["title"]) == ""
