"""An in-memory Elasticsearch for the event log's unit tests, faked at the transport.

``FakeCluster`` sits behind the official client's ``node_class`` hook: it keeps documents by
``_id``, answers ``op_type=create`` with 201 or 409, rejects a document carrying ``poison`` with a
400 mapping error, and can be "down" (connection refused) or answer 503 per item. ``event_log`` is
an ``EventLog`` shipping to it; ``clicks`` posts ``n`` distinct clicks through the intake.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch
from prometheus_client import CollectorRegistry

from connector.events.intake import parse_events
from connector.events.spool import EventLog

INDEX = "events-test"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeCluster(BaseNode):
    docs: ClassVar[dict[str, dict[str, Any]]] = {}
    mappings: ClassVar[dict[str, Any]] = {}
    down: ClassVar[bool] = False
    failing_ids: ClassVar[set[str]] = set()  # answered 503 per item
    requests: ClassVar[list[tuple[str, str]]] = []

    @classmethod
    def reset(cls) -> None:
        cls.docs, cls.mappings, cls.down, cls.failing_ids, cls.requests = {}, {}, False, set(), []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        path = target.split("?", 1)[0]
        FakeCluster.requests.append((method, path))
        if FakeCluster.down:
            raise TransportConnectionError("connection refused")
        if method == "HEAD":
            return self._answer(200 if path.strip("/") in FakeCluster.mappings else 404, None)
        if method == "PUT" and not path.endswith("/_bulk"):
            FakeCluster.mappings[path.strip("/")] = json.loads(body or b"{}").get("mappings")
            return self._answer(200, {"acknowledged": True})
        if method in ("POST", "PUT") and path.endswith("/_bulk"):
            lines = [json.loads(x) for x in (body or b"").split(b"\n") if x.strip()]
            items = []
            for action, doc in zip(lines[0::2], lines[1::2], strict=True):
                meta = action["create"]
                doc_id = meta["_id"]
                if doc_id in FakeCluster.failing_ids:
                    items.append({"create": {"_id": doc_id, "status": 503,
                                             "error": {"type": "unavailable_shards_exception", "reason": "busy"}}})
                elif "poison" in doc:
                    items.append({"create": {"_id": doc_id, "status": 400,
                                             "error": {"type": "document_parsing_exception",
                                                       "reason": "failed to parse field [poison]"}}})
                elif doc_id in FakeCluster.docs:
                    items.append({"create": {"_id": doc_id, "status": 409,
                                             "error": {"type": "version_conflict_engine_exception",
                                                       "reason": "document already exists"}}})
                else:
                    FakeCluster.docs[doc_id] = doc
                    items.append({"create": {"_id": doc_id, "status": 201, "result": "created"}})
            errors = any(i["create"]["status"] >= 300 for i in items)
            return self._answer(200, {"took": 1, "errors": errors, "items": items})
        return self._answer(404, {"error": {"type": "not_found", "reason": path}, "status": 404})

    def _answer(self, status: int, payload: Any) -> NodeApiResponse:
        headers = HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"})
        meta = ApiResponseMeta(status=status, http_version="1.1", headers=headers, duration=0.0, node=self.config)
        return NodeApiResponse(meta, b"" if payload is None else json.dumps(payload).encode())

    def close(self) -> None:
        pass


def event_log(spool: Path, registry: CollectorRegistry | None = None) -> EventLog:
    return EventLog(spool, INDEX, client_factory=lambda: Elasticsearch("http://fake:9200", node_class=FakeCluster,
                                                                       max_retries=0),
                    batch_size=3, registry=registry)


def clicks(n: int, start: int = 0) -> list[dict[str, Any]]:
    return parse_events(json.dumps([{"request_id": f"r{i}", "doc_id": f"d{i}"} for i in range(start, start + n)])
                        .encode(), now=NOW)
