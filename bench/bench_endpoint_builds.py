"""The endpoint's own CPU per warm search, side by side for several builds of it, in one run.

Each build is a checkout (its code on ``PYTHONPATH``) plus ``hybridrank serve`` options (``--http``,
``--loop``); all are started at once against the same node, warmed (query vectors cached), then each
runs every query ``--reps`` times in turn (``--concurrency`` client threads), so load on the machine
falls on all alike. Per build and round: p50/p99/QPS, CPU milliseconds per search from
``/proc/<pid>/stat`` (what bounds throughput on cores shared with Elasticsearch), stage means.

    python bench/bench_endpoint_builds.py --index scifact \\
        --build main=/work/main --build branch=. --build branch-uvloop=.:--http,httptools,--loop,uvloop
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bench_endpoint import (
    SHARED,
    free_port,
    load_queries,
    ports_option,
    process_cpu_s,
    run_phase,
    stage_means,
    stage_totals,
    start_endpoint,
)

ROOT = Path(__file__).resolve().parents[1]


def start(root: Path, options: list[str], es_url: str, ports: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port(ports)
    return start_endpoint(es_url, port, None, 300, root=root, options=options), port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--build", action="append", required=True,
                        help="NAME=CHECKOUT[:OPTION,OPTION...] (serve options, comma-separated).")
    parser.add_argument("--es-url", default=os.environ.get("ES_URL", "http://127.0.0.1:9250"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "endpoint_builds.json"))
    ports_option(parser)
    args = parser.parse_args()

    from connector.retrieval import queries as q
    from hybridrank.config import load_settings

    cfg = load_settings(None).index(args.index)
    texts = load_queries(SHARED / args.collection, "test", args.queries)
    source = {"excludes": [cfg.vector_field]}
    bodies = [{"query": q.bm25_clause(t, cfg.text_fields), "size": 10, "_source": source} for t in texts]
    builds: dict[str, tuple[Path, list[str]]] = {}
    for spec in args.build:
        name, _, rest = spec.partition("=")
        checkout, _, options = rest.partition(":")
        builds[name] = (Path(checkout).resolve(), [o for o in options.split(",") if o])
    running: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    rounds: list[dict[str, object]] = []
    try:
        for name, (root, options) in builds.items():  # inside the try: a build that fails to start stops the rest
            running[name] = start(root, options, args.es_url, args.endpoint_ports)
        for _, port in running.values():
            run_phase(f"http://127.0.0.1:{port}/{args.index}/_search", bodies, args.concurrency)  # cold
        for rep in range(args.reps):
            for name, (proc, port) in running.items():
                metrics = f"http://127.0.0.1:{port}/_hybridrank/metrics"
                before, cpu = stage_totals(httpx.get(metrics).text), process_cpu_s(proc.pid)
                result = run_phase(f"http://127.0.0.1:{port}/{args.index}/_search", bodies, args.concurrency)
                result["endpoint_cpu_ms_per_search"] = round((process_cpu_s(proc.pid) - cpu) * 1000 / len(bodies), 2)
                result["stage_mean_ms"] = stage_means(before, stage_totals(httpx.get(metrics).text))
                result["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
                rounds.append({"build": name, "round": rep, **result})
                print(json.dumps(rounds[-1]), file=sys.stderr)
    finally:
        for proc, _ in running.values():
            proc.terminate()
            proc.wait(timeout=30)
    out = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "index": args.index,
           "queries": len(texts), "concurrency": args.concurrency, "cpus": os.cpu_count(),
           "builds": {name: {"checkout": str(root), "serve_options": options}
                      for name, (root, options) in builds.items()},
           "rounds": rounds}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
