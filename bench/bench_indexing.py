"""Indexing throughput vs the embedder's own rate, in one run on the same documents.

(a) raw: ``Embedder.encode`` of the N embed texts (no vector cache), measured before and after (b)
    so that drift in machine load hits both sides; the mean is the reference rate;
(b) ``index_documents`` of the same N documents into a fresh index with a second cold embedder.

The goal is (b)/(a) >= 0.90: indexing should cost little beyond embedding. Writes
``bench/results/indexing.json``. Usage::

    ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/bench_indexing.py [--collection PATH] [--n 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

from ltr.evaluation.datasets import shared_datasets_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_COLLECTION = shared_datasets_dir() / "scifact"
GOAL = 0.90


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, default=DEFAULT_COLLECTION, help="BEIR folder or JSONL/CSV file")
    parser.add_argument("--n", type=int, default=1000, help="documents to use (the first N)")
    parser.add_argument("--batch-size", type=int, default=64, help="index_documents batch size")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "indexing.json")
    args = parser.parse_args(argv)

    from connector.client import make_client
    from connector.embedding.embedder import Embedder
    from connector.indexing.documents import read_documents
    from connector.indexing.index_setup import create_index
    from connector.indexing.indexer import index_documents
    from connector.indexing.prepare import PreparedDoc, prepare_document
    from connector.node.capabilities import detect
    from hybridrank.config import load_settings

    settings = load_settings(None)
    config = settings.index("bench").model_copy(update={"id_field": "_id"} if args.collection.is_dir() else {})
    items = list(itertools.islice(read_documents(args.collection), args.n))
    prepared = [prepare_document(w, d, config, model_id=settings.embedding.model) for w, d, _ in items if d]
    texts = [p.text for p in prepared if isinstance(p, PreparedDoc)]
    print(f"{len(items)} records, {len(texts)} documents with text, from {args.collection}", flush=True)

    def cold_embedder() -> Embedder:
        emb = Embedder(settings.embedding.model, batch_size=settings.embedding.batch_size, cache_dir=None)
        emb.encode(["warm-up: load the model and its kernels before timing"])
        return emb

    raw_embedder = cold_embedder()

    def raw_rate() -> float:
        started = time.perf_counter()
        raw_embedder.encode(texts)
        return len(texts) / (time.perf_counter() - started)

    load_before = os.getloadavg()
    raw_1 = raw_rate()
    print(f"raw embedding (1): {raw_1:.1f} docs/s", flush=True)

    client = make_client(settings)
    index = f"bench-indexing-{uuid.uuid4().hex[:8]}"
    index_embedder = cold_embedder()
    try:
        setup = create_index(client, index, config, dims=index_embedder.dimension, info=detect(client))
        report = index_documents(client, index, config, index_embedder, iter(items), batch_size=args.batch_size,
                                 progress=False)
        count = int(client.count(index=index)["count"])
        es_version = next(iter(client.nodes.info(node_id="_local", metric="_none")["nodes"].values()))["version"]
    finally:
        client.options(ignore_status=404).indices.delete(index=index)
    print(f"index_documents:   {report.docs_per_s:.1f} docs/s ({report.indexed} indexed, "
          f"{len(report.failed)} failed, {report.seconds:.1f} s)", flush=True)

    raw_2 = raw_rate()
    print(f"raw embedding (2): {raw_2:.1f} docs/s", flush=True)
    raw = (raw_1 + raw_2) / 2
    ratio = report.docs_per_s / raw

    import torch

    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "collection": str(args.collection.resolve().relative_to(REPO.parent)
                          if args.collection.resolve().is_relative_to(REPO.parent) else args.collection),
        "documents": len(texts),
        "indexed": report.indexed,
        "count_in_index": count,
        "failed": len(report.failed),
        "batch_size": args.batch_size,
        "model": settings.embedding.model,
        "analyzer": setup.analyzer,
        "raw_embed_docs_per_s": round(raw, 2),
        "raw_embed_docs_per_s_runs": [round(raw_1, 2), round(raw_2, 2)],
        "index_docs_per_s": round(report.docs_per_s, 2),
        "index_seconds": round(report.seconds, 2),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL,
        "meets_goal": ratio >= GOAL,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in load_before],
        "note": "2 shared cores: Elasticsearch, the embedder and other work all run on them",
        "versions": {
            "python": platform.python_version(),
            "elasticsearch_server": es_version,
            "elasticsearch_client": version("elasticsearch"),
            "torch": version("torch"),
            "sentence_transformers": version("sentence-transformers"),
            "hybridrank": version("hybridrank"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "meets" if result["meets_goal"] else "MISSES"
    print(f"ratio index/raw = {ratio:.3f} ({verdict} the goal {GOAL}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
