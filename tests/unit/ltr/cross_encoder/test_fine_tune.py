"""Cross-encoder pieces without a model or a cluster: pair building, loading errors, the feature, reranking."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from connector.retrieval.candidates import Candidate
from features.base import ExactScores
from features.cross_encoder import CrossEncoderScore
from features.pipeline import FeaturePipeline, FeatureRequest
from features.registry import default_names, resolve
from hybridrank.cli.main import cli
from hybridrank.config import IndexConfig
from hybridrank.errors import DataError, ModelError
from ltr.cross_encoder.fine_tune import build_pairs, doc_text, load_cross_encoder, rerank_top, train_pairs


class LengthScorer:
    """Scores a text by its length (a real, deterministic function), recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append((query, list(texts)))
        return np.array([float(len(t)) for t in texts], dtype=np.float32)


# -- pairs ---------------------------------------------------------------------------------------
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


def test_training_refuses_an_unknown_loss_and_a_listwise_run_without_queries(tmp_path: Path) -> None:
    pairs, labels = [("q", "relevant"), ("q", "not")], [1.0, 0.0]
    with pytest.raises(DataError, match="unknown cross-encoder loss 'hinge'"):
        train_pairs(pairs, labels, tmp_path, loss="hinge")
    with pytest.raises(DataError, match="needs the query of every pair"):
        train_pairs(pairs, labels, tmp_path, loss="listwise", groups=["q"])


def test_doc_text_joins_non_empty_fields_in_order() -> None:
    assert doc_text({"title": " T ", "text": "body", "x": 1}, ["title", "text"]) == "T body"
    assert doc_text({"text": "body", "title": ""}, ["title", "text"]) == "body"
    assert doc_text({}, ["title"]) == ""


# -- loading -------------------------------------------------------------------------------------
def test_missing_path_is_a_plain_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=f"cross-encoder not found: {missing}"):
        load_cross_encoder(missing)


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match=f"{tmp_path} is not a cross-encoder directory: no config.json"):
        load_cross_encoder(tmp_path)


def test_corrupt_directory_is_a_plain_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(ModelError, match=f"cannot load cross-encoder '{tmp_path}'"):
        load_cross_encoder(tmp_path)


# -- the feature ---------------------------------------------------------------------------------
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


# -- reranking -----------------------------------------------------------------------------------
def test_rerank_top_reorders_the_head_only() -> None:
    window = [Candidate(d) for d in ("a", "b", "c", "d", "e")]
    texts = {"a": "x", "b": "xxx", "c": "xx", "d": "xxxxxxxx", "e": "xxxxxxxxx"}
    out = rerank_top(LengthScorer(), "q", window, texts, top_n=3)  # type: ignore[arg-type]
    assert [c.doc_id for c in out] == ["b", "c", "a", "d", "e"]


def test_rerank_top_puts_a_textless_candidate_last_in_the_head() -> None:
    window = [Candidate(d) for d in ("a", "b", "c")]
    out = rerank_top(LengthScorer(), "q", window, {"b": "x", "c": "xx"}, top_n=3)  # type: ignore[arg-type]
    assert [c.doc_id for c in out] == ["c", "b", "a"]


# -- CLI -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["cross-encoder", "--help"], ["cross-encoder", "train", "--help"],
                                  ["cross-encoder", "score", "--help"], ["cross-encoder", "bench", "--help"]])
def test_cross_encoder_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_evaluate_help_lists_the_cross_encoder_baseline() -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0 and "--cross-encoder" in result.output and "--cross-encoder-top-n" in result.output


def test_score_with_a_missing_model_exits_1_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cross-encoder", "score", "--model", str(tmp_path / "nope"), "--query", "q", "t"])
    assert result.exit_code == 1
    assert f"cross-encoder not found: {tmp_path / 'nope'}" in result.output


def test_the_cli_trains_with_the_library_defaults() -> None:
    import inspect

    from hybridrank.cli.cross_encoder import train
    from ltr.cross_encoder.fine_tune import DEFAULT_MAX_LENGTH, fine_tune_cross_encoder

    cli = {p.name: p.default for p in train.params}
    library = {name: p.default for name, p in inspect.signature(fine_tune_cross_encoder).parameters.items()
               if p.default is not inspect.Parameter.empty}
    shared = sorted(set(cli) & set(library))
    assert {"max_length", "epochs", "max_pairs", "learning_rate", "batch_size"} <= set(shared)
    assert {n: cli[n] for n in shared} == {n: library[n] for n in shared}
    assert library["max_length"] == DEFAULT_MAX_LENGTH
