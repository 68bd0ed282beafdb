"""`hybridrank evaluate` end to end on a real slice of SciFact in the real Elasticsearch node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from tests.support.indices import judged_slice

N_QUERIES = 20
N_DOCS = 150
MODES = ("bm25", "knn", "es", "rrf", "linear")


@pytest.fixture()
def scifact_index(es, embedder, fresh_index: str, shared_datasets: Path) -> Iterator[str]:
    from elasticsearch import helpers

    docs = judged_slice(shared_datasets, N_QUERIES, N_DOCS)
    vectors = embedder.encode([f"{d['title']} {d['text']}".strip() for d in docs])
    es.indices.create(index=fresh_index, mappings={"properties": {
        "title": {"type": "text"},
        "text": {"type": "text"},
        "embedding": {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"},
    }}, settings={"number_of_shards": 1, "number_of_replicas": 0})
    ok, errors = helpers.bulk(es, ({"_index": fresh_index, "_id": d["_id"], "title": d["title"],
                                    "text": d["text"], "embedding": v.tolist()}
                                   for d, v in zip(docs, vectors, strict=True)), refresh="wait_for")
    assert ok == N_DOCS and not errors
    yield fresh_index


def test_evaluate_every_mode_end_to_end(scifact_index: str, es_url: str, shared_datasets: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.delenv("HYBRIDRANK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./hybridrank.toml
    out = tmp_path / "eval" / "scifact.json"
    result = CliRunner().invoke(cli, [
        "evaluate", "--collection", str(shared_datasets / "scifact"), "--index", scifact_index,
        "--limit-queries", str(N_QUERIES), "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    for mode in MODES:
        assert mode in result.output
    assert "W/T/L" in result.output

    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data["means"]) == list(MODES)
    assert len(data["query_ids"]) == N_QUERIES
    means = {mode: data["means"][mode] for mode in MODES}
    for mode, scores in means.items():
        assert set(scores) == {"ndcg@10", "recall@100", "mrr@10"}
        # every relevant doc is among 150: a sane ranker finds most of them near the top
        assert 0.3 < scores["ndcg@10"] <= 1.0, (mode, scores)
        assert scores["recall@100"] >= 0.9, (mode, scores)
        assert scores["mrr@10"] >= scores["ndcg@10"] - 0.2, (mode, scores)
    assert means["bm25"]["ndcg@10"] > 0.5
    # the hybrids are not worse than the weaker leg
    weaker = min(means["bm25"]["ndcg@10"], means["knn"]["ndcg@10"])
    assert means["rrf"]["ndcg@10"] >= weaker - 0.05 and means["linear"]["ndcg@10"] >= weaker - 0.05

    assert data["baseline"] == "bm25" and set(data["p_values"]) == {"knn", "es", "rrf", "linear"}
    for mode in ("knn", "es", "rrf", "linear"):
        wtl = data["win_tie_loss"][mode]["ndcg@10"]
        assert wtl["W"] + wtl["T"] + wtl["L"] == N_QUERIES
        assert 0.0 <= data["p_values"][mode]["ndcg@10"] <= 1.0
    assert data["empty_queries"] == dict.fromkeys(MODES, 0)

    meta = data["meta"]
    assert meta["es_version"].split(".")[0] in {"8", "9"}
    assert f"--index {scifact_index}" in meta["command"] and "--limit-queries 20" in meta["command"]
    assert meta["collection"] == {"name": "scifact", "path": str(shared_datasets / "scifact"),
                                  "split": "test", "queries": N_QUERIES}
    assert meta["window"] == 100 and meta["modes"] == list(MODES) and meta["date"].startswith("20")


def test_evaluate_subset_of_modes_and_missing_index(scifact_index: str, es_url: str, shared_datasets: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = tmp_path / "two.json"
    result = runner.invoke(cli, [
        "evaluate", "--collection", str(shared_datasets / "scifact"), "--index", scifact_index,
        "--limit-queries", "5", "--modes", "knn,rrf", "--window", "20", "--stat-test", "fisher",
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data["means"]) == ["knn", "rrf"] and data["baseline"] == "knn"  # bm25 not run
    assert data["stat_test"] == "fisher" and data["meta"]["window"] == 20

    missing = runner.invoke(cli, [
        "evaluate", "--collection", str(shared_datasets / "scifact"), "--index", scifact_index + "-nope",
    ])
    assert missing.exit_code == 1
    assert f"no such index [{scifact_index}-nope]" in missing.output and "hybridrank index" in missing.output

