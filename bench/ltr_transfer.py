"""Ranking quality on the three shared collections, and the 3x3 transfer table (issue 14).

Each collection by its protocol (SciFact train -> test; ArguAna, own document removed, and Cranfield by
5-fold CV by query), the learned ranker against the best fusion of the same logs with a paired t-test,
then (``--transfer``) a model trained on each collection scoring the other two unchanged. Feature logs
are written once to ``--logs`` (reused while the feature configuration is unchanged). Needs the three
collections indexed on the managed node (``hybridrank index ../shared/datasets/<name> --index <name>``).

    .venv/bin/python bench/ltr_transfer.py --transfer --json docs/results/transfer.json

``--features`` picks a subset of the logged columns and ``--param key=value`` overrides LightGBM
parameters (both for measuring levers; the defaults are the shipped configuration).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUEST_TIME = datetime(2025, 1, 15, tzinfo=UTC)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    from hybridrank.config import load_settings
    from ltr.evaluation.datasets import shared_datasets_dir
    from ltr.evaluation.transfer import log_collection, protocol_report, shared_specs, summary, transfer_table
    from ltr.training.train import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(shared_datasets_dir()))
    parser.add_argument("--collections", default="scifact,arguana,cranfield")
    parser.add_argument("--logs", default=str(ROOT / "runs" / "quality"), help="Where feature logs are kept.")
    parser.add_argument("--log-features", default="", help="Comma-separated features to log (default: the index's).")
    parser.add_argument("--features", default="", help="Comma-separated subset of the logged features to train on.")
    parser.add_argument("--param", action="append", default=[], help="LightGBM parameter override key=value.")
    parser.add_argument("--train", action="append", default=[], help="TrainConfig override key=value.")
    parser.add_argument("--transfer", action="store_true", help="Also the 3x3 transfer table.")
    parser.add_argument("--transfer-only", action="store_true",
                        help="Only the off-diagonal transfer cells (the diagonal: the protocol rows of --json).")
    parser.add_argument("--drop-query-doc", action=argparse.BooleanOptionalAction, default=True,
                        help="ArguAna: the query's own document leaves the window before features (default; "
                             "kept, a model trained on ArguAna learns to demote the most similar document).")
    parser.add_argument("--index-suffix", default="", help="Use the indices <collection><suffix> (e.g. _en).")
    parser.add_argument("--log-only", action="store_true", help="Only write the feature logs.")
    parser.add_argument("--label", default="", help="A name for this trial in the JSON.")
    parser.add_argument("--json", type=Path, default=None, help="Append the results (a JSON list) here.")
    args = parser.parse_args()

    settings = load_settings()
    specs = {n: replace(s, index=s.index + args.index_suffix, name=s.name + args.index_suffix)
             for n, s in shared_specs(args.datasets).items()}
    names = [n.strip() for n in args.collections.split(",") if n.strip()]
    log_features = [f for f in args.log_features.split(",") if f] or None
    features = [f for f in args.features.split(",") if f] or None
    params = dict(p.split("=", 1) for p in args.param)
    overrides = {k: _value(v) for k, v in (t.split("=", 1) for t in args.train)}
    config = TrainConfig(lightgbm_params={k: _value(v) for k, v in params.items()}, **overrides)
    logs = {n: log_collection(settings, specs[n], Path(args.logs), request_time=REQUEST_TIME,
                              features=log_features, drop_query_doc=args.drop_query_doc) for n in names}
    if args.log_only:
        return
    started = time.perf_counter()
    record: dict[str, Any] = {"label": args.label, "features": features, "lightgbm_params": config.lightgbm_params,
                              "train_overrides": overrides, "collections": {},
                              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    for name, coll_logs in logs.items() if not args.transfer_only else ():
        row = summary(protocol_report(coll_logs, config, features))
        record["collections"][name] = row
        print(f"{args.label or 'trial'} {name}: {row}", flush=True)
    if args.transfer or args.transfer_only:
        record["transfer"] = transfer_table(logs, config, features, own=record["collections"])
    record["seconds"] = round(time.perf_counter() - started, 1)
    if args.json is not None:
        previous = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([*previous, record], indent=1) + "\n")


if __name__ == "__main__":
    main()
