"""Each feature on hand-made candidates: values, NaN for missing (never a silent zero), registry rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from connector.retrieval.candidates import Candidate
from connector.retrieval.fusion import window_fusions
from features.base import DENSE_SCORE, ExactScores, FeatureContext, bm25_key
from features.bm25_best_fields import BM25BestFields
from features.bm25_field import BM25Field
from features.ctr import ClickThroughRate
from features.dense_similarity import DenseCosine
from features.found_by_both import FoundByBoth
from features.freshness import AgeDays, Freshness, parse_timestamp
from features.fused_score import FusedScore
from features.leg_rank import LegRank
from features.numeric_field import NumericField
from features.query_features import QueryLength
from features.registry import default_names, resolve, resolve_all
from hybridrank.config import IndexConfig
from hybridrank.errors import ConfigError

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CFG = IndexConfig(text_fields={"title": 2.0, "text": 1.0}, timestamp_field="published",
                  numeric_fields=["views"], freshness_half_life_days=30)

BOTH = Candidate("both", leg_scores={"bm25": 7.0, "knn": 0.9}, leg_ranks={"bm25": 1, "knn": 2})
LEX = Candidate("lex", leg_scores={"bm25": 5.0}, leg_ranks={"bm25": 2})
DENSE = Candidate("dense", leg_scores={"knn": 0.95}, leg_ranks={"knn": 1})
GONE = Candidate("gone", leg_scores={"knn": 0.5}, leg_ranks={"knn": 3})  # deleted before the feature query


def _ctx(click_stats: object = None) -> FeatureContext:
    exact = {
        "both": ExactScores({bm25_key("title"): 3.0, bm25_key("text"): 4.0, DENSE_SCORE: 0.95},
                            {"published": "2025-01-30T12:00:00Z", "views": 99}),
        "lex": ExactScores({bm25_key("text"): 5.0}, {"published": 1735732800000}),  # no vector, epoch millis
        "dense": ExactScores({DENSE_SCORE: 0.975}, {"views": "n/a"}),  # matched no text field
    }
    cands = [BOTH, LEX, DENSE, GONE]
    return FeatureContext("Heart attack, risk?", np.ones(3), NOW, CFG, exact, window_fusions(cands, CFG),
                          click_stats)  # type: ignore[arg-type]


def test_bm25_field_zero_when_unmatched_nan_when_doc_missing() -> None:
    ctx = _ctx()
    title = BM25Field("title")
    assert title.name == "bm25_title"
    assert title.value(ctx, BOTH) == 3.0
    assert title.value(ctx, DENSE) == 0.0  # returned, did not match: a true zero
    assert math.isnan(title.value(ctx, GONE))


def test_bm25_best_fields_recomputes_the_multi_match_score() -> None:
    ctx = _ctx()
    # boosts title 2, text 1: max(6, 4) + 0.5 * 4
    assert BM25BestFields().value(ctx, BOTH) == pytest.approx(8.0)
    assert BM25BestFields().value(ctx, DENSE) == 0.0
    assert math.isnan(BM25BestFields().value(ctx, GONE))


def test_dense_cosine_converts_es_score_and_is_nan_without_vector() -> None:
    ctx = _ctx()
    assert DenseCosine().value(ctx, BOTH) == pytest.approx(0.9)
    assert DenseCosine().value(ctx, DENSE) == pytest.approx(0.95)
    assert math.isnan(DenseCosine().value(ctx, LEX))
    assert math.isnan(DenseCosine().value(ctx, GONE))


def test_leg_ranks_and_found_by_both() -> None:
    ctx = _ctx()
    assert LegRank("bm25").value(ctx, LEX) == 2.0
    assert math.isnan(LegRank("bm25").value(ctx, DENSE))
    assert math.isnan(LegRank("knn").value(ctx, LEX))
    assert [FoundByBoth().value(ctx, c) for c in (BOTH, LEX, DENSE)] == [1.0, 0.0, 0.0]


def test_fused_scores_follow_connector_fusion_and_leave_inputs_alone() -> None:
    ctx = _ctx()
    assert FusedScore("rrf").value(ctx, BOTH) == pytest.approx(1 / 61 + 1 / 62)
    assert FusedScore("rrf").value(ctx, DENSE) == pytest.approx(1 / 61)
    # linear: bm25 min-max over {7, 5}, knn over {0.9, 0.95, 0.5}; weight 0.5
    assert FusedScore("linear").value(ctx, BOTH) == pytest.approx(0.5 * 1.0 + 0.5 * (0.4 / 0.45))
    assert FusedScore("linear").value(ctx, LEX) == pytest.approx(0.0)
    assert BOTH.fused_score == 0.0


def test_freshness_from_request_time_not_the_clock() -> None:
    ctx = _ctx()
    assert AgeDays().value(ctx, BOTH) == pytest.approx(30.0)
    assert Freshness(30).value(ctx, BOTH) == pytest.approx(0.5)
    assert AgeDays().value(ctx, LEX) == pytest.approx((NOW - datetime(2025, 1, 1, 12, tzinfo=UTC)).days)
    assert math.isnan(AgeDays().value(ctx, DENSE)) and math.isnan(Freshness(30).value(ctx, DENSE))
    later = FeatureContext(ctx.query_text, None, NOW + timedelta(days=30), CFG, ctx.exact)
    assert Freshness(30).value(later, BOTH) == pytest.approx(0.25)
    no_field = FeatureContext("q", None, NOW, IndexConfig(), ctx.exact)
    assert math.isnan(AgeDays().value(no_field, BOTH))


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("2025-01-30") == datetime(2025, 1, 30, tzinfo=UTC)
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_timestamp("yesterday") is None and parse_timestamp(None) is None


def test_numeric_field_raw_and_log1p_nan_when_absent_or_not_numeric() -> None:
    ctx = _ctx()
    assert NumericField("views").value(ctx, BOTH) == 99.0
    assert NumericField("views", log=True).value(ctx, BOTH) == pytest.approx(math.log(100))
    assert NumericField("views", log=True).name == "log1p_views"
    assert math.isnan(NumericField("views").value(ctx, LEX))
    assert math.isnan(NumericField("views").value(ctx, DENSE))


class Stats:
    def ctr(self, query: str, doc_id: str) -> float | None:
        return 0.25 if doc_id == "both" else None


def test_ctr_nan_without_statistics() -> None:
    assert math.isnan(ClickThroughRate().value(_ctx(), BOTH))
    with_stats = _ctx(Stats())
    assert ClickThroughRate().value(with_stats, BOTH) == 0.25
    assert math.isnan(ClickThroughRate().value(with_stats, LEX))


def test_query_length_counts_terms() -> None:
    assert QueryLength().value(_ctx(), BOTH) == 3.0


def test_default_names_follow_the_declared_fields() -> None:
    names = default_names(CFG)
    assert names[:2] == ["bm25_title", "bm25_text"]
    assert {"dense_cosine", "rank_bm25", "rank_knn", "fused_rrf", "fused_linear", "age_days", "freshness",
            "num_views"} <= set(names)
    assert "ctr" not in names
    assert "age_days" not in default_names(IndexConfig())


def test_resolve_rejects_unknown_and_undeclared() -> None:
    assert resolve("log1p_views", CFG).name == "log1p_views"
    with pytest.raises(ConfigError, match="unknown feature 'pagerank'"):
        resolve("pagerank", CFG)
    with pytest.raises(ConfigError, match="not one of the index's text_fields"):
        resolve("bm25_body", CFG)
    with pytest.raises(ConfigError, match="numeric_fields"):
        resolve("num_price", CFG)
    with pytest.raises(ConfigError, match="timestamp_field"):
        resolve("freshness", IndexConfig())
    with pytest.raises(ConfigError, match="listed twice"):
        resolve_all(["ctr", "ctr"], CFG)


def test_window_relative_scores() -> None:
    from features.window_relative import BM25Ratio, DenseGap

    ctx = _ctx()
    ctx.candidates = [BOTH, LEX, DENSE, GONE]
    # best-fields BM25: both 8.0, lex 5.0 (text only), dense 0.0; gone is missing
    assert BM25Ratio().value(ctx, LEX) == pytest.approx(5.0 / 8.0)
    assert BM25Ratio().value(ctx, DENSE) == 0.0
    assert math.isnan(BM25Ratio().value(ctx, GONE))
    assert DenseGap().value(ctx, BOTH) == pytest.approx(0.9 - 0.95)
    assert DenseGap().value(ctx, DENSE) == 0.0
    assert math.isnan(DenseGap().value(ctx, LEX))
