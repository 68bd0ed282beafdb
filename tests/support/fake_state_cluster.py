"""An in-memory Elasticsearch for the shared state's unit tests (``connector.state``), faked at the transport.

``FakeStateNode`` sits behind the official client's ``node_class`` hook and answers what the state
documents and artefacts use: index exists / create, cluster health (always green), GET a document
(realtime, ``_source_excludes`` of ``files.data`` honoured), PUT ``_create`` (409 if it exists) and
PUT ``_doc`` with ``if_seq_no``/``if_primary_term`` (409 on a stale sequence number). ``client()`` makes a client on it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch


class FakeStateNode(BaseNode):
    docs: ClassVar[dict[tuple[str, str], dict[str, Any]]] = {}
    indices: ClassVar[set[str]] = set()
    seq_no: ClassVar[int] = 0

    @classmethod
    def reset(cls) -> None:
        cls.docs, cls.indices, cls.seq_no = {}, set(), 0

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        path, _, query = target.partition("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "_cluster":
            return self._answer(200, {"status": "green", "timed_out": False})
        if len(parts) == 1:
            if method == "HEAD":
                return self._answer(200 if parts[0] in self.indices else 404, None)
            self.indices.add(parts[0])
            return self._answer(200, {"acknowledged": True})
        index, kind, doc_id = parts[0], parts[1], "/".join(parts[2:])
        key = (index, doc_id)
        if method == "GET":
            found = self.docs.get(key)
            if found is None:
                return self._answer(404, {"_index": index, "_id": doc_id, "found": False})
            source = json.loads(json.dumps(found["_source"]))
            if "files.data" in params.get("_source_excludes", ""):
                for entry in source.get("files", []):
                    entry.pop("data", None)
            answer = {"_index": index, "_id": doc_id, "found": True, "_seq_no": found["_seq_no"],
                      "_primary_term": 1}
            if params.get("_source") != "false":
                answer["_source"] = source
            return self._answer(200, answer)
        existing = self.docs.get(key)
        if kind == "_create" and existing is not None:
            return self._answer(409, {"error": {"type": "version_conflict_engine_exception"}, "status": 409})
        if "if_seq_no" in params and (existing is None or int(params["if_seq_no"]) != existing["_seq_no"]):
            return self._answer(409, {"error": {"type": "version_conflict_engine_exception"}, "status": 409})
        self.indices.add(index)
        FakeStateNode.seq_no += 1
        self.docs[key] = {"_source": json.loads(body or b"{}"), "_seq_no": FakeStateNode.seq_no}
        return self._answer(201, {"_index": index, "_id": doc_id, "result": "created", "_seq_no": self.seq_no})

    def _answer(self, status: int, payload: Any) -> NodeApiResponse:
        headers = HttpHeaders({"x-elastic-product": "Elasticsearch", "content-type": "application/json"})
        meta = ApiResponseMeta(status=status, http_version="1.1", headers=headers, duration=0.0, node=self.config)
        return NodeApiResponse(meta, b"" if payload is None else json.dumps(payload).encode())

    def close(self) -> None:
        pass


def client() -> Elasticsearch:
    return Elasticsearch("http://state.test:9200", node_class=FakeStateNode)
