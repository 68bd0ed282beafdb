"""The cross_encoder feature: scores the window's top N in one batch, NaN elsewhere and without a model."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from connector.retrieval.candidates import Candidate
from features.base import ExactScores
from features.cross_encoder import CrossEncoderScore
from features.pipeline import FeaturePipeline, FeatureRequest
from features.registry import default_names, resolve
from hybridrank.config import IndexConfig
from tests.support.cross_encoders import LengthScorer


def _matrix(feature_cfg: IndexConfig, scorer: LengthScorer | None, n: int = 5) -> tuple[np.ndarray, list[str]]:
    pipeline = FeaturePipeline(["bm25_best_fields", "cross_encoder"], feature_cfg)
    if scorer is not None:
        pipeline.features[1] = CrossEncoderScore("fake", top_n=feature_cfg.cross_encoder_top_n,
                                                 fields=feature_cfg.embed_fields, scorer=scorer)  # type: ignore[arg-type]
    cands = [Candidate(f"d{i}", leg_ranks={"bm25": i + 1}) for i in range(n)]
    exact = {f"d{i}": ExactScores(named={"bm25:title": 1.0}, source={"title": f"t{i}", "text": "x" * (i + 1)})
             for i in range(n)}
    request = FeatureRequest("the query", None, cands, datetime(2024, 1, 1, tzinfo=UTC))
    return pipeline.matrix(request, exact), pipeline.source_fields


def test_feature_is_nan_beyond_top_n() -> None:
    scorer = LengthScorer()
    matrix, _ = _matrix(IndexConfig(cross_encoder_top_n=3), scorer)
    ce = matrix[:, 1]
    assert ce[:3].tolist() == [len("t0 x"), len("t1 xx"), len("t2 xxx")]
    assert all(math.isnan(v) for v in ce[3:])
    # one batched call per query, for the top 3 only, with the query text
    assert scorer.calls == [("the query", ["t0 x", "t1 xx", "t2 xxx"])]


def test_feature_is_nan_without_a_model_and_fetches_no_text() -> None:
    cfg = IndexConfig()
    assert cfg.cross_encoder_model == "" and "cross_encoder" not in default_names(cfg)
    matrix, source_fields = _matrix(cfg, None)
    assert all(math.isnan(v) for v in matrix[:, 1]) and not np.isnan(matrix[:, 0]).any()
    assert source_fields == []


def test_configured_feature_asks_the_pipeline_for_its_text_fields() -> None:
    cfg = IndexConfig(cross_encoder_model="/models/ce", cross_encoder_top_n=7, embed_fields=["title", "text"])
    feature = resolve("cross_encoder", cfg)
    assert feature.params() == {"model": "/models/ce", "top_n": 7, "fields": ["title", "text"]}
    pipeline = FeaturePipeline(["dense_cosine", "cross_encoder"], cfg)
    assert pipeline.source_fields == ["title", "text"]
    other = FeaturePipeline(["dense_cosine", "cross_encoder"], cfg.model_copy(update={"cross_encoder_top_n": 8}))
    assert pipeline.config_hash() != other.config_hash()
