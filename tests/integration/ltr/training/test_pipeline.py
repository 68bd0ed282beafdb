"""Learning to rank on a real slice of SciFact in the real node: exact features, logging, training,
loading, reranking, and the training/serving parity (bit for bit)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connector.retrieval.retriever import Retriever
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig
from ltr.evaluation.datasets import load_collection
from ltr.evaluation.judgments import Judgments
from ltr.training.feature_log import log_features, read_feature_log, retrieve_requests

N_TRAIN = 60
N_TEST = 15
N_DOCS = 200
WINDOW = 30
REQUEST_TIME = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def _slice(shared: Path) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]], dict[str, str]]:
    coll = load_collection(str(shared / "scifact"))
    train_q = coll.split_queries("train", limit=N_TRAIN)
    test_q = coll.split_queries("test", limit=N_TEST)
    train_qrels = {q: coll.qrels("train")[q] for q in train_q}
    wanted = {d for q in train_q for d in coll.qrels("train")[q]} | {d for q in test_q for d in coll.qrels("test")[q]}
    docs, others = [], []
    for doc in coll.iter_corpus():
        if doc["_id"] in wanted:
            docs.append(doc)
        elif len(others) < N_DOCS:
            others.append(doc)
    return docs + others[: max(0, N_DOCS - len(docs))], train_q, train_qrels, test_q


@pytest.fixture(scope="module")
def scifact(es, embedder, shared_datasets: Path) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    from elasticsearch import helpers

    docs, train_q, train_qrels, test_q = _slice(shared_datasets)
    name = f"ltrcore-{uuid.uuid4().hex[:8]}"
    vectors = embedder.encode([f"{d['title']} {d['text']}".strip() for d in docs])
    es.indices.create(index=name, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "embedding": {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"},
    }}, settings={"number_of_shards": 1, "number_of_replicas": 0})
    helpers.bulk(es, ({"_index": name, "_id": d["_id"], "title": d["title"], "text": d["text"],
                       "embedding": v.tolist()} for d, v in zip(docs, vectors, strict=True)), refresh="wait_for")
    try:
        yield {"index": name, "train": train_q, "qrels": train_qrels, "test": test_q,
               "vectors": {d["_id"]: v for d, v in zip(docs, vectors, strict=True)}}
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def _retriever(es, embedder, index: str) -> Retriever:  # type: ignore[no-untyped-def]
    return Retriever(es, index, IndexConfig(candidate_window=WINDOW, knn_num_candidates=100), embedder)


def test_exact_scores_for_every_candidate(es, embedder, scifact: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    retriever = _retriever(es, embedder, scifact["index"])
    pipeline = FeaturePipeline.from_config(retriever.config)
    text = next(iter(scifact["train"].values()))
    [request] = retrieve_requests(retriever, [text], request_time=REQUEST_TIME)
    matrix = pipeline.compute(es, scifact["index"], text, request.query_vector, request.candidates,
                              request_time=REQUEST_TIME)
    col = {n: j for j, n in enumerate(pipeline.names)}
    assert matrix.shape == (len(request.candidates), len(pipeline.names))
    only_knn = only_bm25 = 0
    for i, cand in enumerate(request.candidates):
        row = matrix[i]
        expected_cos = float(np.dot(scifact["vectors"][cand.doc_id], request.query_vector))
        assert math.isclose(row[col["dense_cosine"]], expected_cos, abs_tol=1e-5), cand.doc_id
        assert not math.isnan(row[col["bm25_title"]]) and not math.isnan(row[col["bm25_text"]])
        if "bm25" in cand.leg_scores:
            # the recomputed best-fields score is the BM25 leg's own score
            assert math.isclose(row[col["bm25_best_fields"]], cand.leg_scores["bm25"], rel_tol=1e-5)
            assert row[col["rank_bm25"]] == cand.leg_ranks["bm25"]
        else:
            only_knn += 1
            assert math.isnan(row[col["rank_bm25"]])
        if "knn" not in cand.leg_scores:
            only_bm25 += 1
            assert math.isnan(row[col["rank_knn"]])
        assert row[col["found_by_both"]] == float("bm25" in cand.leg_ranks and "knn" in cand.leg_ranks)
    assert only_knn > 0 and only_bm25 > 0  # both one-leg cases were exercised


def test_legs_carry_the_exact_scores_the_exact_search_computes(es, embedder, scifact: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """On the real node, the named clauses both legs carry (optional clauses of their post filter) come back
    in every hit's ``matched_queries``, leave the legs' hits, order and scores as they were, and equal what the
    search of the exact-score path gives: BM25 bit for bit, the vector similarity to float precision (the script
    computes in double, Lucene's kNN in float)."""
    retriever = _retriever(es, embedder, scifact["index"])
    pipeline = FeaturePipeline.from_config(retriever.config)
    assert retriever.vector_script_lang == "hybridrank"  # the managed node has the project's plugin
    texts = list(scifact["train"].values())[:8]
    carried = retrieve_requests(retriever, texts, request_time=REQUEST_TIME, pipeline=pipeline)
    plain = retrieve_requests(retriever, texts, request_time=REQUEST_TIME)
    for with_legs, without in zip(carried, plain, strict=True):
        assert [(c.doc_id, c.leg_scores, c.leg_ranks) for c in with_legs.candidates] == \
            [(c.doc_id, c.leg_scores, c.leg_ranks) for c in without.candidates]
        assert all(c.exact is not None and c.exact_by == pipeline.exact_signature for c in with_legs.candidates)
        assert all(c.exact is None for c in without.candidates)
        fetched = pipeline._fetch_exact(es, scifact["index"], [without])[0]
        for cand in with_legs.candidates:
            assert cand.exact is not None
            got, expected = cand.exact.named, fetched[cand.doc_id].named
            assert set(got) == set(expected), cand.doc_id
            for key in ("bm25:title", "bm25:text"):
                assert got.get(key) == expected.get(key), (cand.doc_id, key)
            assert math.isclose(got["dense"], expected["dense"], abs_tol=2e-7), cand.doc_id
    one_trip = pipeline.compute_many(es, scifact["index"], carried)
    two_trips = pipeline.compute_many(es, scifact["index"], plain)
    for a, b in zip(one_trip, two_trips, strict=True):
        assert np.allclose(a, b, rtol=0, atol=1e-6, equal_nan=True)


def test_log_train_load_rerank_and_parity(es, embedder, scifact: dict[str, Any], settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ltr.ranking import Reranker, rerank_windows
    from ltr.training.model import RankingModel
    from ltr.training.train import TrainConfig, train_model

    retriever = _retriever(es, embedder, scifact["index"])
    pipeline = FeaturePipeline.from_config(retriever.config)
    log_path = tmp_path / "train.parquet"
    summary = log_features(retriever, pipeline, scifact["train"], Judgments(scifact["qrels"]), log_path,
                           request_time=REQUEST_TIME, batch_size=16, metadata={"collection": "scifact-slice"})
    assert summary.queries == N_TRAIN and summary.rows >= N_TRAIN * WINDOW
    assert not (tmp_path / "train.parquet.partial").exists()
    log = read_feature_log(log_path)
    assert log.feature_names == pipeline.names
    assert log.metadata["feature_config_hash"] == pipeline.config_hash()
    assert int(log.labels.sum()) > N_TRAIN // 2  # judged docs were found in the windows

    result = train_model(log, tmp_path / "model", config=TrainConfig(valid_fraction=0.25))
    assert result.train_queries + result.valid_queries + result.dropped_queries == N_TRAIN
    for name in ("model.txt", "contract.json", "metrics.json", "importance.png"):
        assert (tmp_path / "model" / name).is_file(), name
    metrics = result.contract.metrics
    assert 0.0 < metrics["valid_window_ndcg@10"] <= 1.0
    model = RankingModel.load(tmp_path / "model", pipeline)
    reranker = Reranker(retriever, pipeline, model)

    # parity: the live features of a logged query are the logged features, bit for bit
    for qid, text in list(scifact["train"].items())[:5]:
        live = reranker.rerank(text, request_time=REQUEST_TIME)
        logged = log.features_of(qid)
        assert sorted(logged) == sorted(c.doc_id for c in live.candidates)
        for cand, row in zip(live.candidates, live.features, strict=True):
            assert np.array_equal(logged[cand.doc_id], row, equal_nan=True), (qid, cand.doc_id)
            assert logged[cand.doc_id].tobytes() == row.tobytes()
        assert list(live.scores) == sorted(live.scores, reverse=True)

    # the reranked test windows evaluate like any other run
    windows = rerank_windows(reranker, scifact["test"], request_time=REQUEST_TIME)
    assert set(windows) == set(scifact["test"])
    assert all(windows[q] for q in windows)

    # a ListNet model on the same log
    listnet = train_model(log, tmp_path / "listnet", config=TrainConfig(model_type="listnet", listnet_epochs=60))
    net = RankingModel.load(listnet.model_dir, pipeline)
    scores = net.score(log.matrix[:50])
    assert scores.shape == (50,) and np.isfinite(scores).all()


def test_transfer_set_monotone_model_serves_what_it_logged(  # type: ignore[no-untyped-def]
        es, embedder, scifact: dict[str, Any], tmp_path: Path) -> None:
    """The window-normalised transfer set (``minmax_*``, ranks) with a monotone model: logged and served bit for bit."""
    from features.registry import transfer_names
    from ltr.ranking import Reranker
    from ltr.training.model import RankingModel
    from ltr.training.train import TrainConfig, train_model

    base = _retriever(es, embedder, scifact["index"])
    config = base.config.model_copy(update={"features": transfer_names(base.config)})
    retriever = Retriever(es, scifact["index"], config, embedder)
    pipeline = FeaturePipeline.from_config(config)
    log_path = tmp_path / "transfer.parquet"
    log_features(retriever, pipeline, scifact["train"], Judgments(scifact["qrels"]), log_path,
                 request_time=REQUEST_TIME, batch_size=16)
    log = read_feature_log(log_path)
    assert log.feature_names == transfer_names(config)
    scaled = log.matrix[:, [n.startswith("minmax_") for n in log.feature_names]]
    assert np.nanmin(scaled) == 0.0 and np.nanmax(scaled) == 1.0  # window-relative: [0, 1] on every query
    result = train_model(log, tmp_path / "model", config=TrainConfig(monotone=True, cv_folds=0, valid_fraction=0.25,
                                                                     lightgbm_params={"num_threads": 1}))
    assert result.contract.training["params"]["monotone_constraints"] == [1, 1, 1, 1, -1, -1, 1]
    reranker = Reranker(retriever, pipeline, RankingModel.load(tmp_path / "model", pipeline))
    for qid, text in list(scifact["train"].items())[:5]:
        live = reranker.rerank(text, request_time=REQUEST_TIME)
        logged = log.features_of(qid)
        for cand, row in zip(live.candidates, live.features, strict=True):
            assert logged[cand.doc_id].tobytes() == row.tobytes(), (qid, cand.doc_id)


def test_a_fold_ensemble_blended_with_fusion_serves_the_scores_it_is_evaluated_with(  # type: ignore[no-untyped-def]
        es, embedder, scifact: dict[str, Any], tmp_path: Path) -> None:
    """--fold-ensemble --fusion-blend: the served window's scores are the ones a log of it is evaluated with."""
    from ltr.evaluation.learned import model_scores
    from ltr.ranking import Reranker
    from ltr.training.model import RankingModel
    from ltr.training.train import TrainConfig, train_model

    retriever = _retriever(es, embedder, scifact["index"])
    pipeline = FeaturePipeline.from_config(retriever.config)
    log_path = tmp_path / "default.parquet"
    log_features(retriever, pipeline, scifact["train"], Judgments(scifact["qrels"]), log_path,
                 request_time=REQUEST_TIME, batch_size=16)
    log = read_feature_log(log_path)
    config = TrainConfig(fold_ensemble=True, fusion_blend=0.7, cv_folds=3, num_boost_round=60,
                         early_stopping_rounds=20, lightgbm_params={"num_threads": 1})
    result = train_model(log, tmp_path / "model", config=config)
    assert result.contract.metrics["fold_ensemble"] == 3
    assert result.contract.fusion_blend == {"feature": "fused_linear", "weight": 0.7}
    evaluated = model_scores(tmp_path / "model", log)  # window by window, as the gate and `evaluate` score
    reranker = Reranker(retriever, pipeline, RankingModel.load(tmp_path / "model", pipeline))
    for qid, text in list(scifact["train"].items())[:5]:
        live = reranker.rerank(text, request_time=REQUEST_TIME)
        rows = {d: i for i, (q, d) in enumerate(zip(log.qids, log.doc_ids, strict=True)) if q == qid}
        assert len(rows) == len(live.candidates)
        for cand, score in zip(live.candidates, live.scores, strict=True):
            assert score == pytest.approx(evaluated[rows[cand.doc_id]], abs=1e-12), (qid, cand.doc_id)
        assert max(live.scores) <= 1.0 and min(live.scores) >= 0.0


def test_train_cli_registers_and_models_cli_promotes_and_rolls_back(
    scifact: dict[str, Any], es_url: str, shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.setenv("HYBRIDRANK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HYBRIDRANK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    index = scifact["index"]
    common = ["--collection", str(shared_datasets / "scifact"), "--index", index, "--window", str(WINDOW),
              "--limit-queries", str(N_TRAIN), "--request-time", "2025-01-15T12:00:00Z"]

    logged = runner.invoke(cli, ["features", "log", *common, "--out", str(tmp_path / "log.parquet")])
    assert logged.exit_code == 0, logged.output
    assert f"for {N_TRAIN} queries" in logged.output

    # the slice judges only N_TEST test queries: too few for the promotion gate, which refuses
    held_out = ["--held-out-collection", str(shared_datasets / "scifact"), "--held-out-limit", str(N_TEST)]
    first = runner.invoke(cli, ["train", "--index", index, "--features-log", str(tmp_path / "log.parquet"),
                                "--register", *held_out])
    assert first.exit_code == 1, first.output
    assert "NDCG@10" in first.output and "dense_cosine" in first.output
    assert f"only {N_TEST} held-out judged queries, the gate needs 20" in " ".join(first.output.split())
    lgbm_id = json.loads(runner.invoke(cli, ["models", "list", "--index", index, "--json"]).output)[0]["model_id"]
    # gating on the model's own training queries leaves none to judge it on
    own = runner.invoke(cli, ["models", "promote", lgbm_id, "--index", index, "--held-out-collection",
                              str(shared_datasets / "scifact"), "--held-out-split", "train",
                              "--held-out-limit", str(N_TRAIN)])
    assert own.exit_code == 1 and f"({N_TRAIN} training queries left out)" in " ".join(own.output.split())
    pushed = runner.invoke(cli, ["models", "promote", lgbm_id, "--index", index, "--force"])
    assert pushed.exit_code == 0, pushed.output
    assert "WARNING: promoted by --force" in pushed.output
    # compiled before it serves, so the endpoint's swap finds the native code in the cache
    assert "compiled for the endpoint" in pushed.output, pushed.output
    assert list((tmp_path / "home" / "compiled").glob("*.o"))
    second = runner.invoke(cli, ["train", *common, "--model-type", "listnet", "--register", *held_out[2:],
                                 "--force"])
    assert second.exit_code == 0, second.output
    assert "promoted" in second.output and "WARNING: promoted by --force" in second.output

    listed = json.loads(runner.invoke(cli, ["models", "list", "--index", index, "--json"]).output)
    assert len(listed) == 2
    serving = [m for m in listed if m["serving"]]
    assert len(serving) == 1 and serving[0]["type"] == "listnet"
    assert {m["gate"] for m in listed} == {"no held-out judgments (forced)"}

    shown = runner.invoke(cli, ["models", "show", "serving", "--index", index])
    assert shown.exit_code == 0, shown.output
    assert "matches" in shown.output and '"missing_policy": "impute_train_median"' in shown.output

    back = runner.invoke(cli, ["models", "rollback", "--index", index])
    assert back.exit_code == 0 and lgbm_id in back.output, back.output
    again = runner.invoke(cli, ["models", "rollback", "--index", index])
    assert again.exit_code == 1 and "nothing to roll back" in again.output
    canary = runner.invoke(cli, ["models", "promote", lgbm_id, "--index", index, "--variant", "canary", "--force"])
    assert canary.exit_code == 0 and "canary: now serving" in canary.output, canary.output
    assert "compiled for the endpoint" in canary.output  # from the cache the first promotion filled

    # the reranking entry point `hybridrank search --model serving` uses
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from hybridrank.config import load_settings
    from ltr.ranking import rerank_with_model

    settings = load_settings(None)
    retriever = Retriever(make_client(settings), index, settings.index(index), embedder_from_settings(settings))
    result = rerank_with_model(settings, retriever, "serving", next(iter(scifact["test"].values())), window=WINDOW)
    assert result.model_id == lgbm_id and len(result.candidates) >= WINDOW
    assert result.candidates[0].source.get("title") is not None

    # a model trained on other features refuses to be promoted for an index configured differently
    (tmp_path / "hybridrank.toml").write_text(f'[indices.{index}]\nfeatures = ["bm25_title", "dense_cosine"]\n')
    refused = runner.invoke(cli, ["--config", str(tmp_path / "hybridrank.toml"), "models", "promote", lgbm_id,
                                  "--index", index, "--force"])  # even forced: the contract is not the gate
    assert refused.exit_code == 1
    assert "feature 'bm25_text' missing from the live config" in refused.output
