"""Retrieval against the real node: every mode, leg scores and ranks kept, filters on both legs, errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.indexing.documents import read_documents
from connector.indexing.index_setup import create_index
from connector.indexing.indexer import index_documents
from connector.retrieval.retriever import MODES, Retriever
from hybridrank.cli.main import cli
from hybridrank.config import IndexConfig, Settings
from hybridrank.errors import HybridRankError, IndexNotFound

CONFIG = IndexConfig(keyword_fields=["bucket"], candidate_window=20, knn_num_candidates=40)
QUERY = "vitamin D and bone fractures in older adults"


@pytest.fixture()
def small_index(es, fresh_index: str, embedder, shared_datasets: Path) -> Iterator[str]:
    """80 SciFact documents, each tagged with a bucket ("even"/"odd" by position) to filter on."""
    docs = []
    for i, (where, doc, err) in enumerate(itertools.islice(read_documents(shared_datasets / "scifact"), 80)):
        assert doc is not None, err
        docs.append((where, {**doc, "bucket": "even" if i % 2 == 0 else "odd"}, None))
    create_index(es, fresh_index, CONFIG, dims=embedder.dimension)
    report = index_documents(es, fresh_index, CONFIG, embedder, docs, progress=False)
    assert report.indexed == 80 and not report.failed
    yield fresh_index


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_returns_a_window_with_leg_scores_and_ranks(es, embedder, small_index: str, mode: str) -> None:
    window = Retriever(es, small_index, CONFIG, embedder).search(QUERY, mode=mode)
    assert 0 < len(window) <= CONFIG.candidate_window
    assert len({c.doc_id for c in window}) == len(window)
    for cand in window:
        assert cand.leg_scores.keys() == cand.leg_ranks.keys() and cand.leg_ranks
        assert all(1 <= r <= CONFIG.candidate_window for r in cand.leg_ranks.values())
    if mode == "bm25":
        assert [c.leg_ranks["bm25"] for c in window] == list(range(1, len(window) + 1))
    if mode == "knn":
        scores = [c.leg_scores["knn"] for c in window]
        assert scores == sorted(scores, reverse=True) and len(window) == CONFIG.candidate_window
    if mode in ("rrf", "linear", "es"):
        fused = [c.fused_score for c in window]
        assert fused == sorted(fused, reverse=True)
        assert any(len(c.leg_ranks) == 2 for c in window)  # the legs overlap on a real query


def test_hybrid_window_holds_documents_only_one_leg_found(es, embedder, small_index: str) -> None:
    retriever = Retriever(es, small_index, CONFIG, embedder)
    legs = retriever.legs_many([QUERY], window=5)[0]
    only_knn = [c for c in legs.candidates.values() if c.leg_ranks.keys() == {"knn"}]
    assert only_knn, "on 80 documents the dense leg finds documents without the query's terms"
    rrf = retriever.fuse(legs, "rrf")
    assert {c.doc_id for c in only_knn} & {c.doc_id for c in rrf}


@pytest.mark.parametrize("mode", ["bm25", "knn", "rrf", "linear", "es"])
def test_filters_apply_to_both_legs(es, embedder, small_index: str, mode: str) -> None:
    retriever = Retriever(es, small_index, CONFIG, embedder)
    window = retriever.search(QUERY, mode=mode, filters=[{"term": {"bucket": "odd"}}], source=["bucket"])
    assert window
    assert {c.source.get("bucket") for c in window} == {"odd"}
    legs = retriever.legs_many([QUERY], filters=[{"term": {"bucket": "odd"}}], source=["bucket"])[0]
    assert {c.source["bucket"] for c in legs.candidates.values()} == {"odd"}
    assert any("knn" in c.leg_ranks for c in legs.candidates.values())


def test_unknown_index_and_empty_query_are_named(es, embedder) -> None:
    with pytest.raises(IndexNotFound, match="no-such-index"):
        Retriever(es, "no-such-index", CONFIG, embedder).search(QUERY)
    with pytest.raises(HybridRankError, match="empty query"):
        Retriever(es, "no-such-index", CONFIG, embedder).search("   ")


def test_search_cli_prints_every_leg(settings: Settings, small_index: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[cluster]\nurl = "{settings.cluster.url}"\n[indices.{small_index}]\n'
                      'keyword_fields = ["bucket"]\ncandidate_window = 20\nknn_num_candidates = 40\n')
    env = {"HYBRIDRANK_HOME": str(settings.home)}
    result = CliRunner().invoke(cli, ["--config", str(config), "search", QUERY, "--index", small_index,
                                      "--mode", "rrf", "--size", "5", "--json",
                                      "--filter", '{"term": {"bucket": "even"}}'], env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ranker"] == "mode rrf" and len(payload["hits"]) == 5
    assert all(h["bm25_rank"] or h["knn_rank"] for h in payload["hits"])
    bad = CliRunner().invoke(cli, ["--config", str(config), "search", QUERY, "--index", small_index,
                                   "--filter", "{not json"], env=env)
    assert bad.exit_code == 2 and "not JSON" in bad.output
    missing = CliRunner().invoke(cli, ["--config", str(config), "search", QUERY, "--index", "absent-index"],
                                 env=env)
    assert missing.exit_code == 1 and "no such index [absent-index]" in missing.output


def test_ids_come_from_doc_values_and_old_indices_still_work(es, embedder, small_index: str, fresh_index: str,
                                                             shared_datasets: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A hybridrank index names hits from doc values (no stored-field read); an index without the
    field (an older one) gets the same window and features, by one resend, and stays on stored-field ids."""
    from connector.indexing.mapping import ID_FIELD, index_body
    from connector.retrieval import hit_ids
    from features.pipeline import FeaturePipeline, FeatureRequest

    monkeypatch.setattr(hit_ids, "_slow", set())
    raw = es.search(index=small_index, query={"match": {"text": "vitamin"}}, size=3,
                    stored_fields="_none_", docvalue_fields=[ID_FIELD])["hits"]["hits"]
    assert raw and all("_id" not in h and h["fields"][ID_FIELD] for h in raw)
    assert ID_FIELD not in es.get(index=small_index, id=hit_ids.hit_id(raw[0]))["_source"]  # out of _source

    old = f"{fresh_index}-old"  # the same documents, in an index created without the field
    analyzer = es.indices.get_mapping(index=small_index)[small_index]["mappings"]["properties"]["title"]["analyzer"]
    body = index_body(CONFIG, dims=embedder.dimension, analyzer=analyzer)
    body["mappings"]["properties"].pop(ID_FIELD)
    body["mappings"].pop("_source")
    es.indices.create(index=old, **body)
    try:
        docs = [(w, {**d, "bucket": "even" if i % 2 == 0 else "odd"}, e) for i, (w, d, e) in
                enumerate(itertools.islice(read_documents(shared_datasets / "scifact"), 80))]
        assert index_documents(es, old, CONFIG, embedder, docs, progress=False).indexed == 80
        assert ID_FIELD not in es.search(index=old, size=1)["hits"]["hits"][0]["_source"]  # not written
        new_legs = Retriever(es, small_index, CONFIG, embedder).legs_many([QUERY])[0]
        old_legs = Retriever(es, old, CONFIG, embedder).legs_many([QUERY])[0]
        assert hit_ids.fast(small_index) and not hit_ids.fast(old)
        assert [(c.doc_id, c.leg_ranks) for c in old_legs.candidates.values()] == \
            [(c.doc_id, c.leg_ranks) for c in new_legs.candidates.values()]
        pipeline = FeaturePipeline.from_config(CONFIG)
        vector = embedder.encode_query(QUERY)
        rows = [pipeline.compute_many(es, name, [FeatureRequest(QUERY, vector, list(legs.candidates.values()),
                                                                datetime(2026, 1, 1, tzinfo=UTC))])[0]
                for name, legs in ((small_index, new_legs), (old, old_legs))]
        assert rows[0].tobytes() == rows[1].tobytes()
    finally:
        es.options(ignore_status=404).indices.delete(index=old)
