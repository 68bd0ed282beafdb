"""Benchmark: feature-logging throughput and LightGBM scoring time of a 100-candidate window.

Indexes a slice of SciFact into a scratch index on the configured cluster (with the project's own
indexer and mapping, as `hybridrank index` does), logs features for the
train queries at a 100-candidate window (per leg), trains a LightGBM ranker on the log, then times
``RankingModel.score`` on 100-row windows with LightGBM's own predict and with the compiled model
(``ltr.compiled``, as the endpoint serves it), alternating on the same windows. Writes
``bench/results/ltr.json``.

    ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/bench_ltr.py --docs 800 --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ltr.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
DATASETS = shared_datasets_dir()
REQUEST_TIME = datetime(2025, 1, 15, tzinfo=UTC)


def _index_slice(es: Any, embedder: Any, name: str, n_docs: int, coll: Any, config: Any) -> int:
    """The judged train documents plus the first ones up to ``n_docs``, indexed as `hybridrank index` does."""
    from connector.indexer import create_index, index_documents

    qrels = coll.qrels("train")
    wanted = {d for docs in qrels.values() for d in docs}
    docs: list[dict[str, Any]] = []
    for doc in coll.iter_corpus():
        if doc["_id"] in wanted or len(docs) < n_docs:
            docs.append(doc)
        if len(docs) >= n_docs:
            break
    create_index(es, name, config, dims=embedder.dimension)
    report = index_documents(es, name, config, embedder, [(f"scifact:{d['_id']}", d, None) for d in docs],
                             progress=False)
    return int(report.indexed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=800)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--score-repeats", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ltr.json")
    args = parser.parse_args()

    from connector.client import make_client
    from connector.embedding import embedder_from_settings
    from connector.retrieval import Retriever
    from features.feature_log import log_features, read_feature_log
    from features.pipeline import FeaturePipeline
    from hybridrank.config import IndexConfig, load_settings
    from ltr.datasets import load_collection
    from ltr.judgments import Judgments
    from ltr.model import RankingModel
    from ltr.train import TrainConfig, train_model

    settings = load_settings(None)
    es = make_client(settings)
    embedder = embedder_from_settings(settings)
    coll = load_collection(str(DATASETS / "scifact"))
    name = f"ltrcore-bench-{uuid.uuid4().hex[:6]}"
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "note": "2 cores shared with other work; ES on the same host"}}
    try:
        started = time.perf_counter()
        config = IndexConfig(candidate_window=args.window, knn_num_candidates=max(200, args.window))
        n_docs = _index_slice(es, embedder, name, args.docs, coll, config)
        print(f"indexed {n_docs} docs in {time.perf_counter() - started:.1f}s")
        retriever = Retriever(es, name, config, embedder)
        pipeline = FeaturePipeline.from_config(config)
        queries = coll.split_queries("train", limit=args.queries)
        judgments = Judgments(coll.qrels("train"))
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for label in ("cold query vectors", "warm query vectors"):
                summary = log_features(retriever, pipeline, queries, judgments, Path(tmp) / "log.parquet",
                                       request_time=REQUEST_TIME, window=args.window, batch_size=args.batch_size)
                runs[label] = {"queries": summary.queries, "rows": summary.rows, "seconds": round(summary.seconds, 3),
                               "queries_per_s": round(summary.queries_per_second, 1),
                               "rows_per_query": round(summary.rows / summary.queries, 1)}
                print(f"feature logging ({label}): {summary.queries_per_second:.1f} queries/s, "
                      f"{summary.rows / summary.queries:.0f} candidates/query")
            results["feature_logging"] = {"window_per_leg": args.window, "docs": n_docs,
                                          "features": pipeline.names, "runs": runs,
                                          "goal_queries_per_s": 100}
            log = read_feature_log(Path(tmp) / "log.parquet")
            trained = train_model(log, Path(tmp) / "model", config=TrainConfig())
            model = RankingModel.load(trained.model_dir, pipeline)
            t0 = time.perf_counter()
            fast = RankingModel.load(trained.model_dir, pipeline, compile_dir=Path(tmp) / "compiled")
            if not fast.wait_compiled(timeout=600):
                raise SystemExit(f"the model did not compile: {fast._scorer.reason}")  # type: ignore[attr-defined]
            compile_s = time.perf_counter() - t0
        windows = [log.matrix[idx] for _, idx in log.groups()]
        windows = [w[:100] for w in windows if len(w) >= 100] or [np.resize(log.matrix, (100, log.matrix.shape[1]))]
        worst = max(float(np.max(np.abs(fast.score(w) - model.score(w)))) for w in windows)
        scorers = {"lightgbm_predict": model.score, "compiled": fast.score}
        for w in windows[:20]:
            for score in scorers.values():
                score(w)  # warm up
        timings: dict[str, list[float]] = {k: [] for k in scorers}
        for i in range(args.score_repeats):  # side by side: the two alternate on the same windows
            w = windows[i % len(windows)]
            for label, score in (scorers.items() if i % 2 else reversed(scorers.items())):
                t0 = time.perf_counter()
                score(w)
                timings[label].append((time.perf_counter() - t0) * 1000)
        trees = trained.contract.metrics.get("best_iteration")
        section: dict[str, object] = {"window_rows": 100, "trees": trees, "features": len(pipeline.names),
                                      "goal_ms": 0.5, "repeats": args.score_repeats,
                                      "compile_seconds_uncached": round(compile_s, 2),
                                      "max_abs_score_difference": worst}
        for label, values in timings.items():
            values.sort()
            p50, p99 = statistics.median(values), values[int(0.99 * (len(values) - 1))]
            section[label] = {"p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
                              "mean_ms": round(statistics.fmean(values), 4)}
            print(f"LightGBM model scoring of a 100-candidate window ({trees} trees), {label}: "
                  f"p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        section["speedup_p50"] = round(timings["lightgbm_predict"][len(timings["lightgbm_predict"]) // 2]
                                       / timings["compiled"][len(timings["compiled"]) // 2], 1)
        print(f"compiled vs LightGBM's predict: {section['speedup_p50']}x at p50; scores differ by at most "
              f"{worst:.2g}; compiling took {compile_s:.1f} s (cached afterwards)")
        results["lightgbm_scoring"] = section
    finally:
        es.options(ignore_status=404).indices.delete(index=name)
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
