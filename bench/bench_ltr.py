"""Benchmark: feature-logging throughput and LightGBM scoring time of a 100-candidate window.

Indexes a slice of SciFact into a scratch index on the configured cluster (with the project's own
indexer and mapping, as `hybridrank index` does), logs features for the
train queries at a 100-candidate window (per leg) — warm passes alternate between the collector
thresholds the CLI sets (``hybridrank.runtime``) and Python's defaults — trains a LightGBM ranker on
the log, then times
``RankingModel.score`` on 100-row windows with LightGBM's own predict and with the compiled model
(``ltr.training.compiled``, as the endpoint serves it), alternating on the same windows. Writes
``bench/results/ltr.json``.

    ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/bench_ltr.py --docs 800 --queries 200
"""

from __future__ import annotations

import argparse
import gc
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

from hybridrank.runtime import GC_THRESHOLDS, tune_gc
from ltr.evaluation.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
DATASETS = shared_datasets_dir()
REQUEST_TIME = datetime(2025, 1, 15, tzinfo=UTC)
DEFAULT_GC_THRESHOLDS = gc.get_threshold()  # Python's own, before tune_gc


def _index_slice(es: Any, embedder: Any, name: str, n_docs: int, coll: Any, config: Any) -> int:
    """The judged train documents plus the first ones up to ``n_docs``, indexed as `hybridrank index` does."""
    from connector.indexing.index_setup import create_index
    from connector.indexing.indexer import index_documents

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


def time_scorers(lightgbm: Any, compiled: Any, windows: list[np.ndarray], repeats: int, what: str) -> dict[str, Any]:
    """p50/p99 of LightGBM's predict and the compiled model, alternating on the same 100-row windows."""
    worst = max(float(np.max(np.abs(compiled(w) - lightgbm(w)))) for w in windows)
    scorers = {"lightgbm_predict": lightgbm, "compiled": compiled}
    for w in windows[:20]:
        for score in scorers.values():
            score(w)  # warm up
    timings: dict[str, list[float]] = {k: [] for k in scorers}
    for i in range(repeats):
        w = windows[i % len(windows)]
        for label, score in (scorers.items() if i % 2 else reversed(scorers.items())):
            t0 = time.perf_counter()
            score(w)
            timings[label].append((time.perf_counter() - t0) * 1000)
    section: dict[str, Any] = {"max_abs_score_difference": worst}
    for label, values in timings.items():
        p50, p99 = statistics.median(values), sorted(values)[int(0.99 * (len(values) - 1))]
        section[label] = {"p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
                          "mean_ms": round(statistics.fmean(values), 4)}
        print(f"scoring a 100-candidate window, {what}, {label}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    section["speedup_p50"] = round(section["lightgbm_predict"]["p50_ms"] / section["compiled"]["p50_ms"], 1)
    print(f"{what}: compiled {section['speedup_p50']}x faster at p50; scores differ by at most {worst:.2g}")
    return section


def big_forest(log: Any, trees: int, where: Path) -> tuple[Any, Any, float]:
    """A lambdarank forest of exactly ``trees`` trees on ``log`` (the project's parameters), and its compiled twin."""
    import lightgbm as lgb

    from ltr.training.compiled import compile_model
    from ltr.training.lambdarank import LIGHTGBM_DEFAULTS

    groups = [idx for _, idx in log.groups()]
    rows = np.concatenate(groups)
    booster = lgb.train(LIGHTGBM_DEFAULTS, lgb.Dataset(log.matrix[rows], log.labels[rows],
                                                       group=[len(g) for g in groups]), num_boost_round=trees)
    where.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(where / "model.txt"))
    t0 = time.perf_counter()
    compiled = compile_model(where / "model.txt", where / "compiled")
    return (lambda m: booster.predict(m, num_threads=1)), compiled, time.perf_counter() - t0


NEW_FEATURES = ("bm25_zscore", "dense_zscore", "bm25_top_gap", "dense_top_gap", "query_idf_sum", "query_idf_max",
                "query_idf_min", "bm25_phrase", "bm25_phrase_ratio")


def feature_costs(index: str, queries: int, repeats: int) -> dict[str, Any]:
    """Cost of each issue-14 feature per 100-candidate window: its ``column`` (Python CPU, the exact
    scores already fetched), and the Elasticsearch side it adds on ``index``: the phrase clause in the
    exact-scores search, and the ``_mtermvectors`` round trip of the query IDF features (per query)."""
    import random

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.fusion import window_fusions
    from connector.retrieval.retriever import Retriever
    from features.base import FeatureContext
    from features.pipeline import FeaturePipeline
    from features.query_idf import term_stats_doc
    from features.registry import resolve
    from hybridrank.config import load_settings
    from ltr.evaluation.datasets import load_collection
    from ltr.training.feature_log import retrieve_requests

    settings = load_settings()
    config = settings.index(index)
    es = make_client(settings)
    retriever = Retriever(es, index, config, embedder_from_settings(settings))
    texts = list(load_collection(str(DATASETS / "scifact")).split_queries("test").values())[:queries]
    requests = [r for r in retrieve_requests(retriever, texts, request_time=REQUEST_TIME, window=100)
                if len(r.candidates) >= 100]
    pipeline = FeaturePipeline(["bm25_phrase"], config)
    exact = pipeline._fetch_exact(es, index, requests)
    idf = pipeline._fetch_term_idf(es, index, requests)
    out: dict[str, Any] = {"index": index, "windows": len(requests), "window_rows": 100, "python_us_per_window": {}}
    rng = random.Random(0)
    for name in NEW_FEATURES:
        feature = resolve(name, config)
        samples = []
        for _ in range(repeats):
            i = rng.randrange(len(requests))
            cands = list(requests[i].candidates)[:100]
            ctx = FeatureContext(requests[i].query_text, None, REQUEST_TIME, config, exact[i],
                                 window_fusions(cands, config), candidates=cands, term_idf=idf[i])
            t0 = time.perf_counter()
            feature.column(ctx)  # type: ignore[attr-defined]
            samples.append(time.perf_counter() - t0)
        out["python_us_per_window"][name] = round(statistics.median(samples) * 1e6, 1)

    def es_ms(search: Any) -> float:
        samples = []
        for _ in range(3):
            for req in requests:
                t0 = time.perf_counter()
                search(req)
                samples.append(time.perf_counter() - t0)
        return round(statistics.median(samples) * 1e3, 2)

    from features.pipeline import exact_scores_body

    def exact_search(with_phrase: bool) -> Any:
        clauses_of = FeaturePipeline(["bm25_phrase"], config)._extra_clauses

        def run(req: Any) -> None:
            ids = [c.doc_id for c in req.candidates][:100]
            body = exact_scores_body(req.query_text, req.query_vector, ids, list(config.text_fields),
                                     config.vector_field, extra_clauses=clauses_of(req.query_text) if with_phrase
                                     else ())
            es.search(index=index, body=body, include_named_queries_score=True, filter_path="took")
        return run

    fields = list(config.text_fields)
    out["es_ms_per_query_p50"] = {
        "exact_scores_search": es_ms(exact_search(False)),
        "exact_scores_search_with_phrase_clause": es_ms(exact_search(True)),
        "mtermvectors_query_idf": es_ms(lambda req: es.mtermvectors(docs=[term_stats_doc(index, req.query_text,
                                                                                             fields)])),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=800)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--score-repeats", type=int, default=2000)
    parser.add_argument("--warm-repeats", type=int, default=5,
                        help="Passes with query vectors cached, after the force-merge, for each GC setting "
                             "(runs vary ~20%% here).")
    parser.add_argument("--big-trees", type=int, default=800, help="Size of the fixed-size forest also timed.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ltr.json")
    parser.add_argument("--feature-costs", metavar="INDEX", default=None,
                        help="Only time the issue-14 features on this existing index (SciFact's) and add the "
                             "section 'feature_costs' to --out, keeping the rest.")
    args = parser.parse_args()
    if args.feature_costs:
        kept = json.loads(args.out.read_text()) if args.out.exists() else {}
        kept["feature_costs"] = {**feature_costs(args.feature_costs, 100, 300),
                                 "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        args.out.write_text(json.dumps(kept, indent=2) + "\n")
        print(json.dumps(kept["feature_costs"], indent=1))
        return

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from hybridrank.config import IndexConfig, load_settings
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.judgments import Judgments
    from ltr.training.feature_log import log_features, read_feature_log
    from ltr.training.model import RankingModel
    from ltr.training.train import TrainConfig, train_model

    tune_gc()  # as the CLI does
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
            runs: dict[str, Any] = {}

            def log_pass(label: str) -> float:
                cpu = time.process_time()
                summary = log_features(retriever, pipeline, queries, judgments, Path(tmp) / "log.parquet",
                                       request_time=REQUEST_TIME, window=args.window, batch_size=args.batch_size)
                cpu_ms = (time.process_time() - cpu) / summary.queries * 1000
                runs[label] = {"queries": summary.queries, "rows": summary.rows, "seconds": round(summary.seconds, 3),
                               "queries_per_s": round(summary.queries_per_second, 1),
                               "python_cpu_ms_per_query": round(cpu_ms, 2),
                               "rows_per_query": round(summary.rows / summary.queries, 1)}
                print(f"feature logging ({label}): {summary.queries_per_second:.1f} queries/s, "
                      f"{runs[label]['python_cpu_ms_per_query']} ms of Python CPU a query, "
                      f"{summary.rows / summary.queries:.0f} candidates/query")
                return summary.queries_per_second

            log_pass("cold query vectors")
            log_pass("warm, as bulk-loaded")
            # then one segment, the state a settled index reaches: a just-bulk-loaded index has several,
            # merged at unpredictable moments during the timed passes
            runs["warm, as bulk-loaded"]["segments"] = len(es.cat.segments(index=name, format="json"))
            es.indices.forcemerge(index=name, max_num_segments=1)
            es.indices.refresh(index=name)
            # warm passes with the CLI's collector thresholds and with Python's defaults, alternating
            # (which goes first alternates too): this machine's speed drifts by ~20% within minutes
            warm: dict[str, list[float]] = {"tuned": [], "default": []}
            thresholds = {"tuned": GC_THRESHOLDS, "default": DEFAULT_GC_THRESHOLDS}
            for i in range(args.warm_repeats):
                for mode in (("tuned", "default") if i % 2 == 0 else ("default", "tuned")):
                    gc.set_threshold(*thresholds[mode])
                    warm[mode].append(log_pass(f"warm query vectors #{i + 1}, gc {mode}"))
            tune_gc()
            for mode, rates in warm.items():
                print(f"feature logging, warm, gc {mode}: median {statistics.median(rates):.1f} queries/s over "
                      f"{len(rates)} passes (min {min(rates):.1f}, max {max(rates):.1f})")
            results["feature_logging"] = {"window_per_leg": args.window, "docs": n_docs,
                                          "features": pipeline.names, "runs": runs,
                                          "gc_thresholds": {k: list(v) for k, v in thresholds.items()},
                                          "warm_median_queries_per_s": round(statistics.median(warm["tuned"]), 1),
                                          "warm_min_queries_per_s": round(min(warm["tuned"]), 1),
                                          "warm_median_queries_per_s_default_gc":
                                              round(statistics.median(warm["default"]), 1),
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
            windows = [w[:100] for w in windows if len(w) >= 100] or [
                np.resize(log.matrix, (100, log.matrix.shape[1]))]
            trees = trained.contract.metrics.get("best_iteration")
            section = time_scorers(model.score, fast.score, windows, args.score_repeats, f"{trees} trees")
            section.update({"trees": trees, "features": len(pipeline.names), "compile_seconds_uncached":
                            round(compile_s, 2)})
            # a forest the size the demo's SciFact model reaches (hundreds of trees), same log
            big_lgb, big_compiled, big_s = big_forest(log, args.big_trees, Path(tmp) / "big")
            big = time_scorers(big_lgb, big_compiled, windows, args.score_repeats, f"{args.big_trees} trees")
            big.update({"trees": args.big_trees, "compile_seconds_uncached": round(big_s, 2)})
        results["lightgbm_scoring"] = {"window_rows": 100, "goal_ms": 0.5, "repeats": args.score_repeats,
                                       "cv_chosen_model": section, "fixed_size_model": big}
    finally:
        es.options(ignore_status=404).indices.delete(index=name)
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
