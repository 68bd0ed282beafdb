"""The scale-free and query-level features: z-scores, top gaps, query IDF, phrase proximity."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from connector.retrieval.candidates import Candidate
from features.base import DENSE_SCORE, ExactScores, FeatureContext, bm25_key
from features.leg_top_gap import LegTopGap, top_gap
from features.leg_zscore import LegZScore, zscores
from features.phrase_proximity import PHRASE_KEY, SLOP, BM25Phrase, BM25PhraseRatio, phrase_clauses
from features.pipeline import FeaturePipeline, exact_scores_body
from features.query_idf import QueryIdf, bm25_idf, idf_from_term_vectors, idf_stat, term_stats_doc
from features.registry import resolve, transfer_names
from features.window_minmax import minmax
from hybridrank.config import IndexConfig
from hybridrank.errors import ConfigError
from ltr.training.lambdarank import monotone_constraints

CFG = IndexConfig(text_fields={"title": 1.0, "text": 1.0})
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CANDS = [Candidate(d, leg_scores={"bm25": 1.0}, leg_ranks={"bm25": i + 1}) for i, d in enumerate("abcd")]


def _ctx(exact: dict[str, ExactScores], term_idf: tuple[float, ...] | None = None) -> FeatureContext:
    return FeatureContext("heart attack", None, NOW, CFG, exact, candidates=CANDS, term_idf=term_idf)


def _exact() -> dict[str, ExactScores]:
    return {
        "a": ExactScores({bm25_key("text"): 6.0, DENSE_SCORE: 0.9, PHRASE_KEY: 3.0}),
        "b": ExactScores({bm25_key("text"): 2.0, DENSE_SCORE: 0.8}),
        "c": ExactScores({DENSE_SCORE: 0.7}),  # matched no text field: BM25 0, phrase 0
        # "d" deleted since retrieval: every exact score missing
    }


def test_zscores_over_present_values() -> None:
    z = zscores(np.array([1.0, 3.0, math.nan]))
    assert z[0] == -1.0 and z[1] == 1.0 and math.isnan(z[2])
    assert zscores(np.array([2.0, 2.0, math.nan]))[:2].tolist() == [0.0, 0.0]  # no spread: 0
    assert np.isnan(zscores(np.array([math.nan, math.nan]))).all()


def test_leg_zscores_are_relative_to_the_window_and_nan_for_a_missing_document() -> None:
    ctx = _ctx(_exact())
    bm25 = LegZScore("bm25").column(ctx)  # BM25 best fields 6, 2, 0 over the found documents
    mean, std = 8 / 3, float(np.std([6.0, 2.0, 0.0]))
    assert bm25[:3] == pytest.approx([(6 - mean) / std, (2 - mean) / std, (0 - mean) / std])
    assert math.isnan(bm25[3])
    dense = LegZScore("dense")
    assert dense.name == "dense_zscore"
    assert dense.value(_ctx(_exact()), CANDS[0]) == pytest.approx(math.sqrt(1.5))  # cosines .8 .6 .4
    assert math.isnan(dense.value(_ctx(_exact()), CANDS[3]))
    with pytest.raises(ValueError, match="unknown leg"):
        LegZScore("title")


def test_top_gap_is_best_minus_second_in_deviations() -> None:
    assert top_gap(np.array([6.0, 2.0, 0.0, math.nan])) == pytest.approx(4.0 / float(np.std([6.0, 2.0, 0.0])))
    assert math.isnan(top_gap(np.array([5.0, math.nan])))  # one present value
    assert top_gap(np.array([1.0, 1.0])) == 0.0
    gap = LegTopGap("bm25")
    column = gap.column(_ctx(_exact()))
    assert len(set(column.tolist())) == 1  # query-level: one value for the whole window
    assert gap.value(_ctx(_exact()), CANDS[3]) == column[0]


def test_bm25_idf_is_lucenes() -> None:
    assert bm25_idf(0, 10) == pytest.approx(math.log(1 + 10.5 / 0.5))
    assert bm25_idf(10, 10) == pytest.approx(math.log(1 + 0.5 / 10.5))


def test_idf_from_term_vectors_reads_the_largest_field() -> None:
    entry = {"term_vectors": {
        "title": {"field_statistics": {"doc_count": 50}, "terms": {"heart": {"doc_freq": 1}}},
        "text": {"field_statistics": {"doc_count": 100},
                 "terms": {"heart": {"doc_freq": 10}, "attack": {"doc_freq": 0}}},
    }}
    assert idf_from_term_vectors(entry) == pytest.approx((bm25_idf(0, 100), bm25_idf(10, 100)))  # by term
    assert idf_from_term_vectors({"term_vectors": {}}) == ()
    assert idf_from_term_vectors({}) == ()  # a query of stop words only: no term vectors


def test_query_idf_statistics_and_nan_without_terms() -> None:
    idf = (1.0, 4.0, 2.5)
    assert idf_stat(idf, "sum") == 7.5 and idf_stat(idf, "max") == 4.0 and idf_stat(idf, "min") == 1.0
    for stat in ("sum", "max", "min"):
        feature = resolve(f"query_idf_{stat}", CFG)
        assert isinstance(feature, QueryIdf)
        assert math.isnan(feature.value(_ctx(_exact(), None), CANDS[0]))  # no statistics fetched
        assert math.isnan(feature.value(_ctx(_exact(), ()), CANDS[0]))  # no indexed term
        assert feature.column(_ctx(_exact(), idf)).tolist() == [idf_stat(idf, stat)] * 4


def test_term_stats_doc_is_an_artificial_document() -> None:
    doc = term_stats_doc("idx", "heart attack", ["title", "text"])
    assert doc["doc"] == {"title": "heart attack", "text": "heart attack"}
    assert doc["term_statistics"] is True and doc["field_statistics"] is True and doc["positions"] is False


def test_phrase_features() -> None:
    ctx = _ctx(_exact())
    assert BM25Phrase().column(ctx)[:3].tolist() == [3.0, 0.0, 0.0]
    assert math.isnan(BM25Phrase().column(ctx)[3])
    ratio = BM25PhraseRatio().column(_ctx(_exact()))
    assert ratio[:3].tolist() == [0.5, 0.0, 0.0]  # 3 / 6; c has BM25 0 -> 0
    assert math.isnan(ratio[3])
    clause = phrase_clauses("heart attack", ["title", "text"])[0]["multi_match"]
    assert clause["type"] == "phrase" and clause["slop"] == SLOP and clause["_name"] == PHRASE_KEY


def test_the_pipeline_adds_one_phrase_clause_and_asks_for_term_stats() -> None:
    pipeline = FeaturePipeline(["bm25_phrase", "bm25_phrase_ratio", "query_idf_sum"], CFG)
    assert pipeline.term_stats
    clauses = pipeline._extra_clauses("heart attack")
    assert clauses == phrase_clauses("heart attack", ["title", "text"])  # shared by both phrase features
    body = exact_scores_body("heart attack", None, ["a"], ["title", "text"], "embedding", extra_clauses=clauses)
    should = body["query"]["bool"]["should"]
    assert [c["match"][f]["_name"] for c, f in zip(should[:2], ["title", "text"], strict=True)] == \
        [bm25_key("title"), bm25_key("text")]
    assert should[2:] == clauses
    assert not FeaturePipeline(["bm25_text", "dense_cosine"], CFG).term_stats


def test_minmax_is_linear_fusions_normalisation_of_an_exact_score() -> None:
    mm = minmax(np.array([6.0, 2.0, 0.0, math.nan]))
    assert mm[:3].tolist() == [1.0, 1 / 3, 0.0] and math.isnan(mm[3])
    assert minmax(np.array([2.0, 2.0, math.nan]))[:2].tolist() == [1.0, 1.0]  # no spread: 1, as linear fusion
    assert np.isnan(minmax(np.array([math.nan]))).all()
    ctx = _ctx(_exact())
    assert resolve("minmax_bm25_text", CFG).column(ctx)[:3].tolist() == [1.0, 1 / 3, 0.0]
    dense = resolve("minmax_dense_cosine", CFG)
    assert dense.value(ctx, CANDS[1]) == pytest.approx(0.5) and math.isnan(dense.value(ctx, CANDS[3]))
    assert resolve("minmax_bm25_best_fields", CFG).params() == {"base": "bm25_best_fields", "tie_breaker": 0.5}


@pytest.mark.parametrize("name", ["minmax_rank_bm25", "minmax_bm25_abstract", "minmax_"])
def test_minmax_of_anything_but_an_exact_score_is_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        resolve(name, CFG)


def test_monotone_direction_of_a_minmax_score_is_its_scores() -> None:
    assert monotone_constraints(["minmax_bm25_text", "minmax_dense_cosine", "rank_bm25"]) == [1, 1, -1]
    assert transfer_names(CFG) == ["minmax_bm25_title", "minmax_bm25_text", "minmax_bm25_best_fields",
                                   "minmax_dense_cosine", "rank_bm25", "rank_knn", "found_by_both"]
