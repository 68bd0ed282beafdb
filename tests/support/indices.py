"""Shared by the endpoint's integration tests: a small real profiled index (the server thread is
``connector.endpoint.thread``)."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

CATEGORIES = ("alpha", "beta", "gamma")
DOCS = 60


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


def judged_slice(shared: Path, n_queries: int, n_docs: int) -> list[dict[str, Any]]:
    """The relevant docs of SciFact's first ``n_queries`` test queries, padded with other docs to ``n_docs``."""
    from tests.support.collection_slices import collection_slice

    return collection_slice(shared, "scifact", "test", n_queries, n_docs)[0]
