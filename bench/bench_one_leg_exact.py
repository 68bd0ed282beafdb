"""Does exact scoring of one-leg candidates matter? NDCG@10 of LightGBM with and without it, same run.

The endpoint's one round trip (``features.exact_scoring``) scores every candidate on every named clause,
so a document only BM25 found still gets its exact vector similarity (a script) and one only kNN found its
per-field BM25. Cheaper designs would leave those missing. This bench logs the features of a collection's
train and test splits once (``ltr.training.feature_log``, the serving code), then trains and evaluates the
default LightGBM on three versions of the same logs:

- ``exact``: every candidate has every exact score (what serves);
- ``no_dense_for_bm25_only``: the vector features (``dense_cosine``, ``dense_cosine_gap``) missing (NaN) for
  candidates the kNN leg did not find;
- ``no_exact_for_one_leg``: also the BM25 features (``bm25_<field>``, ``bm25_best_fields``, its ratio)
  missing for candidates the lexical leg did not find.

NDCG@10 on the test split (ranx), each variant trained with the same seeds; paired t-test against ``exact``.
A collection without a train split (Cranfield) is judged by k-fold cross-validation by query over its test
split (``--query-folds``, 5 by default; the same folds for every variant and seed).

    python bench/bench_one_leg_exact.py --collection scifact --index scifact --seeds 3 [--cv-folds 0]
    python bench/bench_one_leg_exact.py --collection cranfield --index cranfield --query-folds 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ltr.evaluation.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
REQUEST_TIME = datetime(2025, 1, 1, tzinfo=UTC)
DENSE = ("dense_cosine", "dense_cosine_gap")
LEXICAL_PREFIX = "bm25_"
LEXICAL_EXCEPT = ("bm25_zscore", "bm25_top_gap", "bm25_phrase", "bm25_phrase_ratio")
VARIANTS = ("exact", "no_dense_for_bm25_only", "no_exact_for_one_leg")


def masked(log: Any, variant: str) -> Any:
    """``log`` with the variant's features missing where the candidate's leg did not find it."""
    if variant == "exact":
        return log
    col = {n: j for j, n in enumerate(log.feature_names)}
    matrix = log.matrix.copy()
    not_knn = np.isnan(matrix[:, col["rank_knn"]])
    for name in DENSE:
        if name in col:
            matrix[not_knn, col[name]] = np.nan
    if variant == "no_exact_for_one_leg":
        not_bm25 = np.isnan(matrix[:, col["rank_bm25"]])
        for name, j in col.items():
            if name.startswith(LEXICAL_PREFIX) and name not in LEXICAL_EXCEPT:
                matrix[not_bm25, j] = np.nan
    return replace(log, matrix=matrix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cv-folds", type=int, default=5,
                        help="LightGBM's tree-count CV (the default training's); 0 = early stopping on a split.")
    parser.add_argument("--query-folds", type=int, default=5,
                        help="k-fold CV by query over the test split, for a collection without a train split.")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "one_leg_exact.json"))
    args = parser.parse_args()

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from hybridrank.config import load_settings
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.learned import cross_validated_run, log_split, model_scores, run_from_scores
    from ltr.evaluation.metrics import evaluate_runs
    from ltr.training.train import TrainConfig, train_model

    settings = load_settings(None)
    collection = load_collection(str(shared_datasets_dir() / args.collection), home=settings.home)
    retriever = Retriever(make_client(settings), args.index, settings.index(args.index),
                          embedder_from_settings(settings))
    runs: dict[str, Any] = {}
    query_cv = "train" not in collection.splits()
    with tempfile.TemporaryDirectory(prefix="one-leg-exact-") as tmp:
        test = log_split(retriever, collection, "test", Path(tmp) / "test.parquet", request_time=REQUEST_TIME)
        train = None if query_cv else log_split(retriever, collection, "train", Path(tmp) / "train.parquet",
                                                request_time=REQUEST_TIME)
        for variant in VARIANTS:
            for seed in range(args.seeds):
                config = TrainConfig(seed=42 + seed, cv_folds=args.cv_folds)
                if train is None:  # the folds are the same for every variant and seed (KFold's seed 42)
                    runs[f"{variant}#{seed}"] = cross_validated_run(masked(test, variant), folds=args.query_folds,
                                                                    config=config)
                    continue
                model = train_model(masked(train, variant), Path(tmp) / f"{variant}-{seed}", config=config)
                scores = model_scores(model.model_dir, masked(test, variant))
                runs[f"{variant}#{seed}"] = run_from_scores(test, scores)
    report = evaluate_runs(collection.qrels("test"), runs, baseline="exact#0")
    ndcg = {name: round(float(report.means[name]["ndcg@10"]), 4) for name in runs}
    p_values = {name: report.p_values.get(name, {}).get("ndcg@10") for name in runs}
    summary = {variant: float(np.mean([v for k, v in ndcg.items() if k.split("#")[0] == variant]))
               for variant in VARIANTS}
    result = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "collection": args.collection,
              "cv_folds": args.cv_folds, "query_folds": args.query_folds if query_cv else None,
              "load_average": Path("/proc/loadavg").read_text().split()[:3],
              "index": args.index, "seeds": args.seeds, "vector_script_lang": retriever.vector_script_lang,
              "ndcg@10_mean": {k: round(v, 4) for k, v in summary.items()}, "ndcg@10": ndcg,
              "p_vs_exact_seed0": p_values, "test_queries": len(report.query_ids)}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({"ndcg@10_mean": summary, "ndcg@10": ndcg}, indent=2))


if __name__ == "__main__":
    main()
