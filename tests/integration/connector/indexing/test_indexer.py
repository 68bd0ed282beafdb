"""Indexing against the real node: counts, idempotence, named failures, unreachable cluster, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from connector.client import make_client
from connector.indexing.documents import read_documents
from connector.indexing.index_setup import create_index
from connector.indexing.indexer import index_documents
from connector.indexing.prepare import embed_text
from hybridrank.cli.main import cli
from hybridrank.config import IndexConfig, Settings
from hybridrank.errors import ClusterUnavailable, IndexNotFound
from tests.support.analyzers import Bare


def _scifact(shared_datasets: Path, n: int):
    return itertools.islice(read_documents(shared_datasets / "scifact"), n)


def test_index_50_then_rerun_skips_all(es, fresh_index, embedder, shared_datasets) -> None:
    cfg = IndexConfig()
    setup = create_index(es, fresh_index, cfg, dims=embedder.dimension, info=Bare())
    assert setup.created and setup.analyzer == "standard" and setup.dims == 384
    report = index_documents(es, fresh_index, cfg, embedder, _scifact(shared_datasets, 50), batch_size=16,
                             progress=False)
    assert (report.indexed, report.failed, report.skipped_unchanged) == (50, [], 0)
    assert es.count(index=fresh_index)["count"] == 50
    stored = es.get(index=fresh_index, id="4983")["_source"]
    assert len(stored["doc_hash"]) == 64 and "_id" not in stored and stored["title"]
    # the stored vector is the document's own: a kNN query with it finds the document first
    vector = embedder.encode([embed_text(stored, cfg)])[0].tolist()
    knn = es.search(index=fresh_index, knn={"field": "embedding", "query_vector": vector, "k": 1,
                                            "num_candidates": 50})
    assert knn["hits"]["hits"][0]["_id"] == "4983" and knn["hits"]["hits"][0]["_score"] > 0.99
    # the refresh interval paused during the load is restored
    assert "refresh_interval" not in es.indices.get_settings(index=fresh_index)[fresh_index]["settings"]["index"]

    again = index_documents(es, fresh_index, cfg, embedder, _scifact(shared_datasets, 50), progress=False)
    assert (again.indexed, again.failed, again.skipped_unchanged) == (0, [], 50)
    assert es.count(index=fresh_index)["count"] == 50

    # one changed document is re-embedded and overwritten, the rest skipped
    docs = list(_scifact(shared_datasets, 50))
    where, doc, err = docs[3]
    assert doc is not None
    docs[3] = (where, {**doc, "title": doc["title"] + " (revised)"}, err)
    third = index_documents(es, fresh_index, cfg, embedder, docs, progress=False)
    assert (third.indexed, third.skipped_unchanged) == (1, 49)
    assert es.count(index=fresh_index)["count"] == 50
    assert es.get(index=fresh_index, id=doc["_id"])["_source"]["title"].endswith("(revised)")


def test_bad_records_are_named_and_valid_ones_load(es, fresh_index, embedder, tmp_path) -> None:
    cfg = IndexConfig(numeric_fields=["year"], timestamp_field="published", keyword_fields=["lang"])
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "ok1", "title": "Aspirin and headache", "text": "A trial.", "year": "2019", "lang": "en"}),
        '{"id": "broken", "title": "no closing brace"',
        json.dumps({"id": "empty", "title": "", "text": ""}),
        json.dumps({"id": "nan", "title": "Bad year", "text": "x", "year": "last year"}),
        json.dumps({"id": "baddate", "title": "Bad date", "text": "x", "published": "not a date"}),
        json.dumps({"title": "no id at all", "text": "x"}),
        json.dumps({"id": "ok2", "title": "Statins", "text": "Cholesterol.", "published": "2021-03-04"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    create_index(es, fresh_index, cfg, dims=embedder.dimension, info=Bare())
    report = index_documents(es, fresh_index, cfg, embedder, read_documents(path), progress=False)
    assert report.indexed == 2
    assert es.count(index=fresh_index)["count"] == 2
    assert es.get(index=fresh_index, id="ok1")["_source"]["year"] == 2019.0
    by_where = {f.where: f for f in report.failed}
    assert set(by_where) == {f"{path}:{n}" for n in (2, 3, 4, 5, 6)}
    assert "malformed JSON" in by_where[f"{path}:2"].reason
    assert by_where[f"{path}:3"].doc_id == "empty" and "nothing to embed" in by_where[f"{path}:3"].reason
    assert by_where[f"{path}:4"].doc_id == "nan" and "non-numeric value 'last year'" in by_where[f"{path}:4"].reason
    assert by_where[f"{path}:5"].doc_id == "baddate" and "published" in by_where[f"{path}:5"].reason
    assert by_where[f"{path}:6"].doc_id is None and "no document id" in by_where[f"{path}:6"].reason



def test_missing_index_is_index_not_found(es, fresh_index, embedder) -> None:
    with pytest.raises(IndexNotFound):
        index_documents(es, fresh_index, IndexConfig(), embedder, [("x:1", {"id": "1", "text": "t"}, None)],
                        progress=False)


def test_unreachable_cluster(settings: Settings, embedder) -> None:
    client = make_client(settings, url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(ClusterUnavailable, match="cannot reach Elasticsearch"):
        create_index(client, "hybridrank-unreachable", IndexConfig(), dims=384, info=Bare())
    with pytest.raises(ClusterUnavailable):
        index_documents(client, "hybridrank-unreachable", IndexConfig(), embedder, [], progress=False)



def test_cli_index_help() -> None:
    result = CliRunner().invoke(cli, ["index", "--help"])
    assert result.exit_code == 0
    for option in ("--index", "--format", "--recreate", "--limit", "--batch-size", "--analyzer", "--no-merge"):
        assert option in result.output


def test_cli_index_small_real_run(settings: Settings, es, fresh_index, tmp_path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('id,title,text\n1,Vitamin D,"Bone density, a trial."\n2,Sleep,Memory and sleep.\n3,,\n'
                    "4,Coffee,Heart rate.\n", encoding="utf-8")
    env = {"ES_URL": settings.cluster.url, "HYBRIDRANK_HOME": str(settings.home), "HYBRIDRANK_CONFIG": ""}
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(path), "--index", fresh_index, "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert "indexed 3 docs in" in result.output and "1 failed, 0 unchanged" in result.output
    assert f"{path}:4 [3]: nothing to embed" in result.output
    assert es.count(index=fresh_index)["count"] == 3
    assert _segments(es, fresh_index) == {1}  # a load ends force-merged: one segment a shard
    es.index(index=fresh_index, id="other", document={"title": "Another"}, refresh=True)  # a second segment
    assert _segments(es, fresh_index) == {2}

    rerun = runner.invoke(cli, ["index", str(path), "--index", fresh_index, "--limit", "2"], env=env)
    assert rerun.exit_code == 0, rerun.output
    assert "indexed 0 docs" in rerun.output and "0 failed, 2 unchanged" in rerun.output
    assert "2 segments into 1" in rerun.output and _segments(es, fresh_index) == {1}  # a re-run merges it too

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    nothing = runner.invoke(cli, ["index", str(bad), "--index", fresh_index, "--no-progress"], env=env)
    assert nothing.exit_code == 1 and "nothing was loaded" in nothing.output and "malformed JSON" in nothing.output

    down = runner.invoke(cli, ["index", str(path), "--index", fresh_index],
                         env={**env, "ES_URL": "http://127.0.0.1:9"})
    assert down.exit_code == 1 and "cannot reach Elasticsearch" in down.output


def _segments(es: Elasticsearch, index: str) -> set[int]:
    """The segment counts of the index's shard copies."""
    shards = es.indices.segments(index=index)["indices"][index]["shards"]
    return {len(copy["segments"]) for copies in shards.values() for copy in copies}
