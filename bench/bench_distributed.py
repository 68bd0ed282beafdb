"""Training beyond one process, measured side by side in one run on a loaded SciFact index.

1. Feature logging of the same training queries with 1, then 2 (``--workers``) worker processes
   (``ltr.training.parallel_log``): wall-clock seconds and queries/s, worker start-up included, and
   whether the logs hold the same rows.
2. LightGBM lambdarank on that log in this process and on a Dask ``LocalCluster`` of 2 workers
   (``ltr.training.dask_lambdarank``), the same parameters and number of trees: training seconds and
   NDCG@10 (ranx) on the SciFact test queries' logged windows (judgments: the full test qrels).

Writes ``bench/results/distributed.json`` with ``/proc/loadavg`` beside the numbers.

    python bench/bench_distributed.py --index scifact --queries 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MOMENT = datetime(2025, 1, 1, tzinfo=UTC)


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _ndcg(model_dir: Path, log: Any, qrels: dict[str, dict[str, int]]) -> float:
    import lightgbm as lgb

    from ltr.evaluation.metrics import evaluate_runs
    from ltr.training.model import LIGHTGBM_FILE

    scores = lgb.Booster(model_file=str(model_dir / LIGHTGBM_FILE)).predict(log.matrix)
    run = {qid: {str(log.doc_ids[r]): float(scores[r]) for r in rows} for qid, rows in log.groups()}
    report = evaluate_runs({q: qrels[q] for q in run}, {"model": run}, baseline=None, metrics=("ndcg@10",))
    return round(float(report.means["model"]["ndcg@10"]), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--collection", default="scifact", help="Collection under the shared datasets.")
    parser.add_argument("--queries", type=int, default=300, help="Training queries logged (each worker count).")
    parser.add_argument("--test-queries", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--trees", type=int, default=150)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "distributed.json")
    args = parser.parse_args()

    from hybridrank.config import load_settings
    from ltr.evaluation.datasets import load_collection, shared_datasets_dir
    from ltr.training.collection_log import log_collection_split
    from ltr.training.feature_log import read_feature_log
    from ltr.training.train import TrainConfig, train_model

    settings = load_settings(None)
    collection = str(shared_datasets_dir() / args.collection)
    result: dict[str, Any] = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "index": args.index,
                              "loadavg_before": _loadavg(), "logging": [], "training": []}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        logs = {}
        for workers in args.workers:
            out = Path(tmp) / f"train-{workers}.parquet"
            summary = log_collection_split(settings, collection=collection, split="train", index=args.index, out=out,
                                           request_time=MOMENT, limit_queries=args.queries, workers=workers)
            logs[workers] = read_feature_log(out)
            result["logging"].append({"workers": workers, "queries": summary.queries, "rows": summary.rows,
                                      "seconds": round(summary.seconds, 1),
                                      "queries_per_s": round(summary.queries_per_second, 2), "loadavg": _loadavg()})
            print(result["logging"][-1], flush=True)
        first, last = logs[args.workers[0]], logs[args.workers[-1]]
        result["logs_identical"] = bool(list(first.doc_ids) == list(last.doc_ids)
                                        and np.allclose(first.matrix, last.matrix, equal_nan=True))
        base = result["logging"][0]["seconds"]
        result["logging_speedup"] = {str(r["workers"]): round(base / r["seconds"], 2) for r in result["logging"]}
        test_out = Path(tmp) / "test.parquet"
        log_collection_split(settings, collection=collection, split="test", index=args.index, out=test_out,
                             request_time=MOMENT, limit_queries=args.test_queries, workers=1)
        test_log = read_feature_log(test_out)
        qrels = load_collection(collection).qrels("test")
        common = {"fixed_rounds": True, "num_boost_round": args.trees, "refit": True}
        for name, extra in (("one process", {}), ("dask LocalCluster(2)", {"dask_scheduler": "", "dask_workers": 2})):
            began = time.perf_counter()
            trained = train_model(last, Path(tmp) / name.replace(" ", "-"), config=TrainConfig(**common, **extra))
            seconds = time.perf_counter() - began
            result["training"].append({"where": name, "trees": args.trees, "seconds": round(seconds, 1),
                                       "test_ndcg@10": _ndcg(trained.model_dir, test_log, qrels),
                                       "test_queries": len(set(test_log.qids)), "loadavg": _loadavg()})
            print(result["training"][-1], flush=True)
    ndcgs = [r["test_ndcg@10"] for r in result["training"]]
    result["dask_minus_single_ndcg@10"] = round(ndcgs[1] - ndcgs[0], 4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("logging_speedup", "logs_identical", "dask_minus_single_ndcg@10")}))


if __name__ == "__main__":
    main()
