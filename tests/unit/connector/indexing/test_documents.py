"""Readers never drop a record silently; preparing a document validates it and says why not."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse

from connector.indexing.documents import count_records, detect_format, read_documents
from connector.indexing.indexer import Failure, PreparedDoc, embed_text, prepare_document
from hybridrank.config import IndexConfig
from hybridrank.errors import DataError
from ltr.evaluation.datasets import shared_datasets_dir

SCIFACT = shared_datasets_dir() / "scifact"


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz"])
def test_jsonl_malformed_line_is_an_error_item_and_others_load(tmp_path: Path, name: str) -> None:
    path = _write_jsonl(tmp_path / name, [
        json.dumps({"id": "a", "text": "first"}),
        '{"id": "b", "text": "broken',
        "",
        "[1, 2]",
        json.dumps({"id": "c", "text": "third"}),
    ])
    items = list(read_documents(path))
    assert [w for w, _, _ in items] == [f"{path}:1", f"{path}:2", f"{path}:4", f"{path}:5"]
    assert items[0][1] == {"id": "a", "text": "first"} and items[0][2] is None
    assert items[1][1] is None and "malformed JSON" in str(items[1][2]) and "Unterminated string" in str(items[1][2])
    assert items[2][1] is None and "expected a JSON object, got list" in str(items[2][2])
    assert items[3][1] == {"id": "c", "text": "third"}
    assert count_records(path) == 4


def test_csv_keeps_strings_and_reports_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('id,title,year\n1,"Hello, world",2020\n2,short\n3,,07\n', encoding="utf-8")
    items = list(read_documents(path))
    assert items[0] == (f"{path}:2", {"id": "1", "title": "Hello, world", "year": "2020"}, None)
    assert items[1][0] == f"{path}:3" and items[1][1] is None and "expected 3 columns" in str(items[1][2])
    assert items[2] == (f"{path}:4", {"id": "3", "year": "07"}, None)  # stays "07": converted only if numeric
    assert count_records(path) == 3


def test_csv_header_must_be_unique(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,id\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="unique"):
        list(read_documents(path))


def test_beir_folder_reads_the_real_corpus() -> None:
    items = list(zip(range(3), read_documents(SCIFACT), strict=False))
    first = items[0][1]
    assert first[0].endswith("corpus.jsonl.gz:1") and first[2] is None
    assert first[1] is not None and first[1]["_id"] == "4983" and first[1]["title"]


def test_beir_plain_corpus_and_missing_id(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "corpus.jsonl", [json.dumps({"_id": "1", "text": "x"}), json.dumps({"text": "y"})])
    items = list(read_documents(tmp_path, "beir"))
    assert items[0][1] == {"_id": "1", "text": "x"}
    assert items[1][1] is None and "without '_id'" in str(items[1][2])


def test_format_detection_and_errors(tmp_path: Path) -> None:
    assert detect_format("a.jsonl") == "jsonl" and detect_format("a.ndjson.gz") == "jsonl"
    assert detect_format("a.CSV") == "csv" and detect_format(tmp_path) == "beir"
    with pytest.raises(DataError, match="--format"):
        detect_format("a.txt")
    with pytest.raises(DataError, match="no such file"):
        read_documents(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="not a BEIR folder"):
        list(read_documents(tmp_path, "beir"))


CFG = IndexConfig(numeric_fields=["year"])


def test_embed_text_joins_non_empty_fields_in_order() -> None:
    assert embed_text({"title": " T ", "text": "body"}, CFG) == "T. body"
    assert embed_text({"title": "", "text": "body"}, CFG) == "body"
    assert embed_text({"text": None}, CFG) == ""


def test_prepare_document_converts_numbers_and_hashes_content() -> None:
    ok = prepare_document("f:1", {"_id": "7", "title": "T", "text": "x", "year": " 2020 "}, CFG, model_id="m")
    assert isinstance(ok, PreparedDoc)
    assert ok.doc_id == "7" and ok.text == "T. x"
    assert ok.source == {"title": "T", "text": "x", "year": 2020.0, "doc_hash": ok.doc_hash}
    same = prepare_document("g:9", {"_id": "7", "title": "T", "text": "x", "year": 2020}, CFG, model_id="m")
    other_model = prepare_document("f:1", {"_id": "7", "title": "T", "text": "x", "year": 2020}, CFG, model_id="n")
    assert isinstance(same, PreparedDoc) and same.doc_hash == ok.doc_hash
    assert isinstance(other_model, PreparedDoc) and other_model.doc_hash != ok.doc_hash


@pytest.mark.parametrize(
    ("doc", "doc_id", "reason"),
    [
        ({"title": "T"}, None, "no document id"),
        ({"id": "  ", "title": "T"}, None, "no document id"),
        ({"id": "1", "title": "", "text": "  "}, "1", "nothing to embed"),
        ({"id": "2", "text": "x", "year": "n/a"}, "2", "numeric field 'year' has a non-numeric value 'n/a'"),
        ({"id": "3", "text": "x", "year": "nan"}, "3", "non-numeric"),
        ({"id": "4", "text": "x", "year": True}, "4", "non-numeric"),
    ],
)
def test_prepare_document_failures_name_the_reason(doc: dict, doc_id: str | None, reason: str) -> None:
    result = prepare_document("f:3", doc, CFG, model_id="m")
    assert isinstance(result, Failure)
    assert result.where == "f:3" and result.doc_id == doc_id and reason in result.reason


def test_configured_id_field() -> None:
    cfg = IndexConfig(id_field="pmid")
    result = prepare_document("f:1", {"id": "x", "pmid": 42, "text": "t"}, cfg, model_id="m")
    assert isinstance(result, PreparedDoc) and result.doc_id == "42"
    assert isinstance(prepare_document("f:1", {"id": "x", "text": "t"}, cfg, model_id="m"), Failure)


# --- the bulk pipeline, faked at the transport (no Elasticsearch): 429 retried, item errors named ----


class _FakeNode(BaseNode):
    """Answers like a cluster: the 2nd doc is rejected with 429 once, the 3rd with a mapping error."""

    requests: ClassVar[list[tuple[str, str, bytes | None]]] = []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        self.requests.append((method, target, body))
        path = target.split("?")[0]
        answer: dict = {}
        if path.endswith("/_count"):
            answer = {"count": 0}
        elif path.endswith("/_mapping"):
            answer = {"idx": {"mappings": {"properties": {"hybridrank_id": {"type": "keyword"}}}}}
        elif path.endswith("/_settings") or "/_settings/" in path:
            answer = {} if method == "GET" else {"acknowledged": True}
        elif path == "/_bulk":
            lines = [json.loads(x) for x in (body or b"").decode().splitlines() if x.strip()]
            ids = [line["index"]["_id"] for line in lines[::2]]
            retried = sum(1 for m, t, _ in self.requests if t.startswith("/_bulk")) > 1
            items = []
            for doc_id in ids:
                if doc_id == "b" and not retried:
                    items.append({"index": {"_id": doc_id, "status": 429, "error": {
                        "type": "es_rejected_execution_exception", "reason": "queue full"}}})
                elif doc_id == "c":
                    items.append({"index": {"_id": doc_id, "status": 400, "error": {
                        "type": "document_parsing_exception", "reason": "failed to parse field [year]"}}})
                else:
                    items.append({"index": {"_id": doc_id, "status": 201, "result": "created"}})
            answer = {"took": 1, "errors": True, "items": items}
        meta = ApiResponseMeta(status=200, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"X-Elastic-Product": "Elasticsearch",
                                                    "Content-Type": "application/json"}))
        return NodeApiResponse(meta, json.dumps(answer).encode())


class _FakeEmbedder:
    dimension = 4

    def encode(self, texts: Any) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32)


def test_bulk_retries_429_and_names_item_errors() -> None:
    from elasticsearch import Elasticsearch

    from connector.indexing.indexer import index_documents

    _FakeNode.requests.clear()
    client = Elasticsearch("http://fake:9200", node_class=_FakeNode)
    docs = [(f"f:{i}", {"id": doc_id, "text": f"doc {doc_id}"}, None) for i, doc_id in enumerate("abc", start=1)]
    report = index_documents(client, "idx", IndexConfig(), _FakeEmbedder(), docs, progress=False,
                             initial_backoff=0.01)
    assert report.indexed == 2 and report.skipped_unchanged == 0
    assert report.failed == [Failure("f:3", "c", "document_parsing_exception: failed to parse field [year]")]
    bulks = [body or b"" for _, target, body in _FakeNode.requests if target.startswith("/_bulk")]
    assert len(bulks) == 2 and b'"_id":"b"' in bulks[1] and b'"_id":"a"' not in bulks[1]
    first_source = json.loads(bulks[0].decode().splitlines()[1])
    assert first_source["embedding"] == [1.0, 1.0, 1.0, 1.0] and len(first_source["doc_hash"]) == 64
    assert first_source["hybridrank_id"] == "a"  # the mapping has the doc-value id: it is written
    targets = [(m, t.split("?")[0]) for m, t, _ in _FakeNode.requests]
    # refresh paused for the load, one refresh at the end, then the interval restored
    assert targets[3] == ("PUT", "/idx/_settings")
    assert targets[-2:] == [("POST", "/idx/_refresh"), ("PUT", "/idx/_settings")]
