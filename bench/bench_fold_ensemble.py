"""Benchmark: what a fold ensemble (``train --fold-ensemble``) costs to score, beside the one refit booster.

On a feature log (e.g. one written by ``bench/ltr_transfer.py``), trains the project's LightGBM ranker with the
default inner 5-fold CV twice — refit (today's default) and as a fold ensemble — through ``train_model``, then
times ``RankingModel.score`` of both on the same 100-row windows, alternating, with LightGBM's predict and
with the compiled model the endpoint serves. Writes ``bench/results/fold_ensemble.json``.

    .venv/bin/python bench/bench_fold_ensemble.py --log runs/q2/scifact-train.parquet --features <default features>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from ltr.evaluation.transfer import select_features
    from ltr.training.feature_log import read_feature_log
    from ltr.training.model import RankingModel
    from ltr.training.train import TrainConfig, train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="A feature log (Parquet).")
    parser.add_argument("--features", default="", help="Comma-separated subset of the log's features.")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--param", action="append", default=[], help="LightGBM parameter key=value.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fold_ensemble.json")
    args = parser.parse_args()

    log = read_feature_log(args.log)
    if args.features:
        log = select_features(log, [f for f in args.features.split(",") if f])
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    rng = np.random.default_rng(0)
    windows = [log.matrix[rng.choice(len(log), args.window, replace=False)] for _ in range(200)]
    result: dict[str, Any] = {"log": str(args.log), "rows": len(log), "features": list(log.feature_names),
                              "window_rows": args.window, "repeats": args.repeats,
                              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg())}}
    models: dict[str, dict[str, RankingModel]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fold-ensemble-") as tmp:
        for label, ensemble in (("refit", False), ("fold_ensemble", True)):
            t0 = time.perf_counter()
            config = TrainConfig(fold_ensemble=ensemble, lightgbm_params=params)
            out = train_model(log, Path(tmp) / label, config=config)
            metrics = out.contract.metrics
            result[label] = {"train_seconds": round(time.perf_counter() - t0, 1),
                             "trees": metrics["best_iteration"] * max(1, metrics["fold_ensemble"])}
            compiled = RankingModel.load(out.model_dir, compile_dir=Path(tmp) / "compiled")
            if not compiled.wait_compiled(timeout=600):
                raise SystemExit(f"{label}: the compiled model was not used: {compiled.compile_failure}")
            models[label] = {"lightgbm_predict": RankingModel.load(out.model_dir), "compiled": compiled}
        timings: dict[str, list[float]] = {f"{m}/{b}": [] for m in models for b in models[m]}
        for i in range(args.repeats):
            w = windows[i % len(windows)]
            order = list(timings) if i % 2 else list(reversed(timings))
            for key in order:
                model, backend = key.split("/")
                t0 = time.perf_counter()
                models[model][backend].score(w)
                timings[key].append((time.perf_counter() - t0) * 1000)
    for key, values in timings.items():
        model, backend = key.split("/")
        result[model][backend] = {"p50_ms": round(statistics.median(values), 4),
                                  "p99_ms": round(sorted(values)[int(0.99 * (len(values) - 1))], 4)}
    for backend in ("lightgbm_predict", "compiled"):
        ratio = result["fold_ensemble"][backend]["p50_ms"] / result["refit"][backend]["p50_ms"]
        result[f"{backend}_p50_ratio"] = round(ratio, 2)
        print(f"{backend}: refit {result['refit'][backend]['p50_ms']} ms, fold ensemble "
              f"{result['fold_ensemble'][backend]['p50_ms']} ms p50 per {args.window}-row window ({ratio:.2f}x)")
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
