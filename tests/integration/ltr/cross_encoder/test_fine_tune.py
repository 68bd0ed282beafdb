"""A real (tiny) cross-encoder fine-tune on a SciFact slice in the real node: train, load, score, rerank,
use it as a feature and as the ``ce`` baseline of ``hybridrank evaluate``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from hybridrank.config import IndexConfig, Settings
from ltr.evaluation.datasets import load_collection
from tests.support.indices import judged_slice

N_QUERIES = 12
N_DOCS = 80


@pytest.fixture(scope="module")
def tiny_collection(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Path:
    """A BEIR folder: the first N_QUERIES SciFact test queries as 'train', their relevant docs + padding."""
    coll = load_collection(str(shared_datasets / "scifact"))
    qrels = coll.qrels("test")
    qids = list(coll.split_queries("test", limit=N_QUERIES))
    docs = judged_slice(shared_datasets, N_QUERIES, N_DOCS)
    folder = tmp_path_factory.mktemp("tiny-scifact")
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps({k: d[k] for k in ("_id", "title", "text")}) + "\n"
                                                 for d in docs), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": coll.queries[q]}) + "\n"
                                                  for q in qids), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q in qids for d, g in qrels[q].items()]
    for split in ("train", "test"):
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture()
def tiny_index(es, embedder, fresh_index: str, tiny_collection: Path) -> Iterator[str]:
    from elasticsearch import helpers

    docs = list(load_collection(str(tiny_collection)).iter_corpus())
    vectors = embedder.encode([f"{d['title']} {d['text']}".strip() for d in docs])
    es.indices.create(index=fresh_index, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "embedding": {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"},
    }}, settings={"number_of_shards": 1, "number_of_replicas": 0})
    ok, errors = helpers.bulk(es, ({"_index": fresh_index, "_id": d["_id"], "title": d["title"], "text": d["text"],
                                    "embedding": v.tolist()} for d, v in zip(docs, vectors, strict=True)),
                              refresh="wait_for")
    assert ok == len(docs) and not errors
    yield fresh_index


def test_fine_tune_load_score_rerank_feature_and_evaluate(
        tiny_index: str, tiny_collection: Path, settings: Settings, es, es_url: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from ltr.cross_encoder.fine_tune import METADATA_FILE, fine_tune_cross_encoder
    from ltr.cross_encoder.pairs import fetch_texts
    from ltr.cross_encoder.scoring import CrossEncoderScorer, rerank_windows

    collection = load_collection(str(tiny_collection))
    out = tmp_path / "ce"
    steps: list[tuple[int, int]] = []
    result = fine_tune_cross_encoder(settings, tiny_index, collection, out_dir=out, split="train",
                                     hard_negatives=3, max_pairs=50, max_length=64, batch_size=8, max_steps=3,
                                     seed=3, on_step=lambda d, t: steps.append((d, t)))
    assert 20 <= result.pairs <= 50 and 0 < result.positives < result.pairs
    assert result.steps == 3 and steps[-1] == (3, 3) and math.isfinite(result.final_loss)
    meta = json.loads((out / METADATA_FILE).read_text(encoding="utf-8"))
    assert meta["base"] == "minilm" and meta["pairs"] == result.pairs and meta["seed"] == 3
    assert meta["epochs"] == 2 and meta["loss"] == "listwise"  # the defaults
    assert meta["train_seconds"] > 0 and meta["libraries"]["sentence-transformers"]

    # load by path and score: one finite logit per text, deterministic
    scorer = CrossEncoderScorer.load(out, batch_size=8)
    query = collection.queries[next(iter(collection.qrels("test")))]
    texts = fetch_texts(es, tiny_index, list(next(iter(collection.qrels("test").values()))), ["title", "text"])
    docs = [*texts.values(), "completely unrelated text about football scores"]
    first = scorer.score(query, docs)
    assert first.shape == (len(docs),) and np.isfinite(first).all()
    np.testing.assert_allclose(scorer.score(query, docs), first, rtol=1e-5, atol=1e-5)
    assert scorer.pairs_scored == 2 * len(docs) and scorer.pairs_per_s > 0

    # rerank a real window: the head is reordered by the model's scores, the tail is untouched
    config = settings.index(tiny_index)
    retriever = Retriever(es, tiny_index, config, embedder_from_settings(settings))
    window = retriever.search(query, mode="linear", window=20)
    reranked = rerank_windows(scorer, es, tiny_index, config.embed_fields, {"q": query}, {"q": window}, top_n=5)["q"]
    head_texts = fetch_texts(es, tiny_index, [c.doc_id for c in window[:5]], config.embed_fields)
    head_scores = dict(zip(head_texts, scorer.score(query, list(head_texts.values())).tolist(), strict=True))
    assert [c.doc_id for c in reranked[:5]] == sorted(head_scores, key=lambda d: -head_scores[d])
    assert [c.doc_id for c in reranked[5:]] == [c.doc_id for c in window[5:]]

    # the feature: texts come from the exact-scores search; top 4 scored, the rest NaN
    cfg = IndexConfig(cross_encoder_model=str(out), cross_encoder_top_n=4)
    pipeline = FeaturePipeline(["dense_cosine", "cross_encoder"], cfg)
    matrix = pipeline.compute(es, tiny_index, query, embedder_from_settings(settings).encode_query(query),
                              window[:10], request_time=datetime(2024, 1, 1, tzinfo=UTC))
    np.testing.assert_allclose(matrix[:4, 1], [head_scores[c.doc_id] for c in window[:4]], rtol=1e-4, atol=1e-4)
    assert np.isnan(matrix[4:, 1]).all() and np.isfinite(matrix[:, 0]).all()

    # the `ce` baseline in `hybridrank evaluate`, beside the fusions, with paired tests
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.delenv("HYBRIDRANK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "eval.json"
    run = CliRunner().invoke(cli, ["evaluate", "--collection", str(tiny_collection), "--index", tiny_index,
                                   "--modes", "bm25,rrf", "--limit-queries", "4", "--cross-encoder", str(out),
                                   "--cross-encoder-top-n", "5", "--json", str(report)])
    assert run.exit_code == 0, run.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert list(data["means"]) == ["bm25", "rrf", "ce"] and set(data["p_values"]) == {"rrf", "ce"}
    assert 0.0 <= data["means"]["ce"]["ndcg@10"] <= 1.0
    ce_meta = data["meta"]["cross_encoder"]
    assert ce_meta["top_n"] == 5 and ce_meta["over"] == "linear" and ce_meta["pairs"] == 4 * 5
    assert ce_meta["training"]["pairs"] == result.pairs
