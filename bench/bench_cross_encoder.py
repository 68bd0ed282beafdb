"""Benchmark: cross-encoder scoring throughput (pairs/s), plus its training record and NDCG@10 table.

Scores real (query, document) pairs: the top ``--top-n`` of the linear hybrid window of SciFact test
queries on an existing index, per query (one batch per query, as reranking does) and in one flat
batch list. Merges the model's training metadata (``hybridrank-cross-encoder.json``) and, when
``--eval-json`` is given, the NDCG@10 / Recall@100 / MRR@10 of every run of a ``hybridrank evaluate
--cross-encoder`` report. Writes ``bench/results/cross_encoder.json``.

    ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/bench_cross_encoder.py --model runs/ce/scifact \\
        --index scifact --queries 20 --top-n 20 --eval-json docs/results/scifact-ce.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ltr.evaluation.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
DATASETS = shared_datasets_dir()


def _pairs(index: str, n_queries: int, top_n: int) -> tuple[list[tuple[str, list[str]]], int]:
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from hybridrank.config import load_settings
    from ltr.cross_encoder.fine_tune import HYBRID_MODE
    from ltr.cross_encoder.pairs import fetch_texts
    from ltr.evaluation.datasets import load_collection

    settings = load_settings(None)
    coll = load_collection(str(DATASETS / "scifact"))
    queries = coll.split_queries("test", limit=n_queries)
    config = settings.index(index)
    client = make_client(settings)
    retriever = Retriever(client, index, config, embedder_from_settings(settings))
    windows = retriever.search_many(list(queries.values()), mode=HYBRID_MODE)
    texts = fetch_texts(client, index, [c.doc_id for w in windows for c in w[:top_n]], config.embed_fields)
    groups = [(q, [texts[c.doc_id] for c in w[:top_n] if c.doc_id in texts])
              for q, w in zip(queries.values(), windows, strict=True)]
    return groups, sum(len(t) for _, t in groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="cross-encoder directory")
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-json", type=Path, default=None, help="a `hybridrank evaluate --json` report")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cross_encoder.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine, before this bench adds its own

    from ltr.cross_encoder.fine_tune import read_metadata
    from ltr.cross_encoder.scoring import CrossEncoderScorer

    groups, n_pairs = _pairs(args.index, args.queries, args.top_n)
    scorer = CrossEncoderScorer.load(args.model, batch_size=args.batch_size)
    scorer.score(*groups[0])  # warm-up
    scorer.pairs_scored, scorer.seconds = 0, 0.0
    per_query_ms: list[float] = []
    for query, texts in groups:
        start = time.perf_counter()
        scorer.score(query, texts)
        per_query_ms.append(1000 * (time.perf_counter() - start))
    per_query_ms.sort()
    scoring: dict[str, Any] = {
        "pairs": scorer.pairs_scored, "queries": len(groups), "top_n": args.top_n, "batch_size": args.batch_size,
        "max_length": scorer.max_length, "pairs_per_s": round(scorer.pairs_per_s, 2),
        "ms_per_query_p50": round(per_query_ms[len(per_query_ms) // 2], 1),
        "ms_per_query_p99": round(per_query_ms[min(len(per_query_ms) - 1, int(0.99 * len(per_query_ms)))], 1),
    }
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
                    "note": "shared cores: a load average above this bench's own (about 1 after it) means "
                            "other work ran beside it and these rates are lower bounds"},
        "model": args.model, "scoring": scoring, "training": read_metadata(args.model) or None,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if args.eval_json is not None:
        report = json.loads(args.eval_json.read_text(encoding="utf-8"))
        result["evaluation"] = {
            "source": str(args.eval_json), "command": report["meta"].get("command"),
            "queries": len(report["query_ids"]), "baseline": report["baseline"], "means": report["means"],
            "p_values_vs_baseline": report["p_values"], "cross_encoder": report["meta"].get("cross_encoder"),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(scoring, indent=2))
    print(f"wrote {args.out} ({n_pairs} pairs)")


if __name__ == "__main__":
    main()
