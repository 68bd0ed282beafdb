"""The bulk pipeline, faked at the transport (no Elasticsearch): 429 retried, item errors named."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse

from connector.indexing.indexer import index_documents
from connector.indexing.prepare import Failure
from hybridrank.config import IndexConfig


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
