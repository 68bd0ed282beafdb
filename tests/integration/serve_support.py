"""Shared by the endpoint's integration tests: uvicorn in a thread, a small real profiled index."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from elasticsearch import Elasticsearch

from connector.server import Endpoint

CATEGORIES = ("alpha", "beta", "gamma")
DOCS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn in a background thread (as httpx's own test suite does)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(endpoint.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the endpoint did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _scifact_slice(shared: Path, n: int) -> list[dict[str, Any]]:
    with gzip.open(shared / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, n)]


@contextlib.contextmanager
def temporary_index(es: Elasticsearch, embedder: Any, shared: Path, prefix: str) -> Iterator[str]:
    """A uniquely named ``build_index`` index, deleted on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    build_index(es, embedder, shared, name)
    try:
        yield name
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def build_index(es: Elasticsearch, embedder: Any, shared: Path, name: str) -> None:
    """A SciFact slice with vectors, a keyword category and a year."""
    docs = _scifact_slice(shared, DOCS)
    vectors = embedder.encode([f"{d['title']} {d['text']}" for d in docs])
    es.indices.create(index=name, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"}, "category": {"type": "keyword"},
        "year": {"type": "integer"},
        "embedding": {"type": "dense_vector", "dims": int(vectors.shape[1]), "similarity": "cosine"},
    }})
    operations: list[dict[str, Any]] = []
    for i, (doc, vector) in enumerate(zip(docs, vectors, strict=True)):
        operations.append({"index": {"_index": name, "_id": str(doc["_id"])}})
        operations.append({"title": doc["title"], "text": doc["text"], "category": CATEGORIES[i % 3],
                           "year": 2000 + i % 20, "embedding": [float(x) for x in vector]})
    result = es.bulk(operations=operations, refresh=True)
    if result["errors"]:
        raise RuntimeError(f"bulk indexing into {name} failed")
