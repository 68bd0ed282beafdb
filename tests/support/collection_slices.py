"""Small real indices cut from the shared collections: the judged documents of a few queries, padded with
other documents, embedded with the test embedder (its disk cache makes a second run quick)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers


def collection_slice(shared: Path, name: str, split: str, n_queries: int, n_docs: int
                     ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(documents, the split's first ``n_queries`` queries): every document those queries judge, padded with
    the corpus's first other documents to ``n_docs`` (more when the judged ones alone are more)."""
    from ltr.evaluation.datasets import load_collection

    coll = load_collection(str(shared / name))
    queries = coll.split_queries(split, limit=n_queries)
    wanted = {d for q in queries for d in coll.qrels(split)[q]}
    docs: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for doc in coll.iter_corpus():
        if doc["_id"] in wanted:
            docs.append(doc)
        elif len(others) < n_docs:
            others.append(doc)
    assert len(docs) == len(wanted), f"{name}: judged documents missing from the corpus"
    return docs + others[: max(0, n_docs - len(docs))], queries


@contextlib.contextmanager
def slice_index(es: Elasticsearch, embedder: Any, docs: list[dict[str, Any]], prefix: str) -> Iterator[str]:
    """A uniquely named index of ``docs`` (title, text, embedding), deleted on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    vectors = embedder.encode([f"{d['title']} {d['text']}".strip() for d in docs])
    es.indices.create(index=name, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "embedding": {"type": "dense_vector", "dims": int(vectors.shape[1]), "index": True, "similarity": "cosine"},
    }}, settings={"number_of_shards": 1, "number_of_replicas": 0})
    try:
        helpers.bulk(es, ({"_index": name, "_id": d["_id"], "title": d["title"], "text": d["text"],
                           "embedding": v.tolist()} for d, v in zip(docs, vectors, strict=True)), refresh="wait_for")
        yield name
    finally:
        es.options(ignore_status=404).indices.delete(index=name)
