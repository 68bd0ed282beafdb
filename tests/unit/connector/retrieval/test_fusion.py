"""Fusion methods on hand-made candidates with known answers."""

import math

import pytest

from connector.retrieval.candidates import Candidate, merge_legs
from connector.retrieval.fusion import FUSIONS, linear, ordered, rrf


def _cands() -> dict[str, Candidate]:
    return merge_legs(
        "idx",
        {
            "bm25": [{"_id": "a", "_score": 10.0}, {"_id": "b", "_score": 6.0}, {"_id": "c", "_score": 2.0}],
            "knn": [{"_id": "c", "_score": 0.9}, {"_id": "d", "_score": 0.7}, {"_id": "a", "_score": 0.5}],
        },
    )


def test_merge_keeps_each_leg_score_and_rank_and_absence() -> None:
    cands = _cands()
    assert set(cands) == {"a", "b", "c", "d"}
    assert cands["a"].leg_scores == {"bm25": 10.0, "knn": 0.5}
    assert cands["a"].leg_ranks == {"bm25": 1, "knn": 3}
    assert "knn" not in cands["b"].leg_ranks and cands["b"].found_by("bm25")
    assert cands["d"].leg_ranks == {"knn": 2}


def test_rrf_sums_reciprocal_ranks() -> None:
    cands = _cands()
    rrf(cands.values(), k=60)
    assert cands["a"].fused_score == pytest.approx(1 / 61 + 1 / 63)
    assert cands["d"].fused_score == pytest.approx(1 / 62)
    assert [c.doc_id for c in ordered(cands.values())] == ["a", "c", "b", "d"]


def test_linear_min_max_normalises_each_leg() -> None:
    cands = _cands()
    linear(cands.values(), weight=0.5)
    # a: bm25 (10-2)/8 = 1, knn (0.5-0.5)/0.4 = 0 -> 0.5 ; c: bm25 0, knn 1 -> 0.5 ; b: .5*.5 = .25
    assert cands["a"].fused_score == pytest.approx(0.5)
    assert cands["c"].fused_score == pytest.approx(0.5)
    assert cands["b"].fused_score == pytest.approx(0.25)
    assert cands["d"].fused_score == pytest.approx(0.5 * 0.5)


def test_linear_weight_one_is_dense_only_order() -> None:
    cands = _cands()
    linear(cands.values(), weight=1.0)
    top = ordered(cands.values())
    assert [c.doc_id for c in top[:3]] == ["c", "d", "a"]


def test_single_leg_fusions_mark_unfound_as_minus_infinity() -> None:
    cands = _cands()
    FUSIONS["knn"](cands.values())
    assert math.isinf(cands["b"].fused_score) and cands["b"].fused_score < 0
    assert cands["c"].fused_score == 0.9


def test_ordering_breaks_ties_by_doc_id() -> None:
    cands = [Candidate("b", fused_score=1.0), Candidate("a", fused_score=1.0)]
    assert [c.doc_id for c in ordered(cands)] == ["a", "b"]
