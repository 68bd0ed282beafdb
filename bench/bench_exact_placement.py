"""Where a leg carries the features' named clauses: a weight-0 ``rescore`` (the former builder) or optional
clauses of its ``post_filter`` (``features.exact_scoring``, today's), against the legs carrying nothing.

Both carriers return the same hits, order, scores and ``matched_queries`` (checked here on every query
before timing). They differ in Elasticsearch's work: a rescore also runs every named clause over the
leg's window in the query phase, while a filter's optional clauses beside a required one are dropped
there and run only in the fetch phase, where ``include_named_queries_score`` scores each returned hit.

Each variant sends the endpoint's own leg bodies (``connector.endpoint.upstream_bodies``, the serving
feature set's clauses) as one ``_msearch`` per query, from a bare client: sequentially (one client, so
latency is Elasticsearch's service time plus one HTTP exchange, with Elasticsearch's own ``took``) and at
``--concurrency`` (throughput on the shared cores). Rounds alternate the variants so drifting load hits
each alike. Writes ``bench/results/exact_placement.json``.

    python bench/bench_exact_placement.py --index scifact --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_endpoint import ROOT, SHARED, load_queries, run_calls, workload_options

Body = dict[str, Any]
VARIANTS = ("none", "rescore", "post_filter")
NDJSON = {"content-type": "application/x-ndjson"}


def rescore_leg(body: Body, clauses: Sequence[Body], window: int) -> Body:
    """The former carrier: the clauses as a rescore of weight 0 over the leg's window."""
    return {**body, "rescore": {"window_size": window, "query": {
        "rescore_query": {"bool": {"should": list(clauses)}}, "query_weight": 1.0, "rescore_query_weight": 0.0}}}


def msearch_payloads(index: str, cfg: Any, texts: Sequence[str], vectors: Sequence[Any],
                     lang: str) -> dict[str, list[str]]:
    """Per variant, each query's ``_msearch`` payload of both legs, as the endpoint builds them."""
    from connector.endpoint import dsl, upstream_bodies
    from connector.endpoint.wire import join_ndjson
    from connector.retrieval import queries
    from features.pipeline import FeaturePipeline

    pipeline = FeaturePipeline.from_config(cfg)
    out: dict[str, list[str]] = {name: [] for name in VARIANTS}
    for text, vector in zip(texts, vectors, strict=True):
        plan = dsl.plan_search(index, {"query": queries.bm25_clause(text, cfg.text_fields)}, {}, {index: cfg})
        assert isinstance(plan, dsl.SearchPlan)
        scoring = pipeline.exact_scoring(plan.query_text, vector, lang)
        assert scoring is not None, "the cluster has no vector script: nothing to carry"
        plain = [upstream_bodies.lexical_leg(plan), upstream_bodies.knn_leg(plan, vector, cfg)]
        legs = {"none": plain,
                "rescore": [rescore_leg(leg, scoring.clauses, plan.window) for leg in plain],
                "post_filter": [upstream_bodies.lexical_leg(plan, scoring),
                                upstream_bodies.knn_leg(plan, vector, cfg, scoring)]}
        for name, bodies in legs.items():
            out[name].append(join_ndjson(item for body in bodies for item in (plan.header, body)).decode())
    return out


def send(client: httpx.Client, es_url: str, payload: str, named: bool) -> httpx.Response:
    params = {"include_named_queries_score": "true"} if named else {}
    response = client.post(f"{es_url}/_msearch", params=params, headers=NDJSON, content=payload)
    response.raise_for_status()
    return response


def check_same_answers(es_url: str, payloads: dict[str, list[str]]) -> int:
    """Both carriers give every query the same hits, order, scores and named scores; the number checked."""
    with httpx.Client(timeout=60) as client:
        for i, (a, b) in enumerate(zip(payloads["rescore"], payloads["post_filter"], strict=True)):
            left = send(client, es_url, a, True).json()["responses"]
            right = send(client, es_url, b, True).json()["responses"]
            for x, y in zip(left, right, strict=True):
                hx, hy = x["hits"]["hits"], y["hits"]["hits"]
                assert [(h.get("fields"), h["_score"]) for h in hx] == [(h.get("fields"), h["_score"]) for h in hy], i
                for u, v in zip(hx, hy, strict=True):
                    assert u.get("matched_queries") == v.get("matched_queries"), (i, u.get("fields"))
    return len(payloads["rescore"])


def sequential(es_url: str, payloads: Sequence[str], named: bool) -> dict[str, float]:
    """One client, one search at a time: wall p50/mean and Elasticsearch's own mean ``took``."""
    walls, took = [], []
    with httpx.Client(timeout=60, headers={"accept-encoding": "identity"}) as client:
        for payload in payloads:
            start = time.perf_counter()
            took.append(send(client, es_url, payload, named).json()["took"])
            walls.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(walls), 2), "mean_ms": round(statistics.fmean(walls), 2),
            "took_mean_ms": round(statistics.fmean(took), 2)}


def concurrent(es_url: str, payloads: Sequence[str], named: bool, concurrency: int) -> dict[str, Any]:
    call: Callable[[httpx.Client, int], httpx.Response] = \
        lambda client, i: send(client, es_url, payloads[i], named)  # noqa: E731
    return run_calls(call, len(payloads), concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    workload_options(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--es-url", default=os.environ.get("ES_URL", "http://127.0.0.1:9250"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "exact_placement.json"))
    args = parser.parse_args()

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.node.capabilities import detect_vector_script_lang
    from hybridrank.config import load_settings

    settings = load_settings(None)
    settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"url": args.es_url})})
    cfg = settings.index(args.index)
    lang = detect_vector_script_lang(make_client(settings, url=args.es_url))
    texts = load_queries(SHARED / args.collection, args.split, args.queries)
    embedder = embedder_from_settings(settings)
    payloads = msearch_payloads(args.index, cfg, texts, [embedder.encode_query(t) for t in texts], lang or "")
    checked = check_same_answers(args.es_url, payloads)
    print(f"{checked} queries: same hits, order, scores and named scores under both carriers", file=sys.stderr)
    for name in VARIANTS:  # warm every variant's caches before timing
        sequential(args.es_url, payloads[name][:20], name != "none")
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        rounds.append({name: {"sequential": sequential(args.es_url, payloads[name], name != "none"),
                              "concurrent": concurrent(args.es_url, payloads[name], name != "none", args.concurrency)}
                       for name in order})
        print(json.dumps(rounds[-1]), file=sys.stderr)

    def median_of(name: str, mode: str, key: str) -> float:
        return round(statistics.median(rd[name][mode][key] for rd in rounds), 2)

    summary = {name: {"took_mean_ms": median_of(name, "sequential", "took_mean_ms"),
                      "sequential_p50_ms": median_of(name, "sequential", "p50_ms"),
                      "concurrent_p50_ms": median_of(name, "concurrent", "p50_ms"),
                      "concurrent_qps": median_of(name, "concurrent", "qps")} for name in VARIANTS}
    ratios = {"took_post_filter_over_rescore": round(summary["post_filter"]["took_mean_ms"]
                                                     / summary["rescore"]["took_mean_ms"], 3),
              "qps_post_filter_over_rescore": round(summary["post_filter"]["concurrent_qps"]
                                                    / summary["rescore"]["concurrent_qps"], 3),
              "qps_post_filter_over_none": round(summary["post_filter"]["concurrent_qps"]
                                                 / summary["none"]["concurrent_qps"], 3)}
    result = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "index": args.index, "collection": args.collection, "split": args.split, "queries": len(texts),
              "window": cfg.candidate_window, "concurrency": args.concurrency, "vector_script_lang": lang,
              "load_average": Path("/proc/loadavg").read_text().split()[:3], "same_answers_checked": checked,
              "summary_median_of_rounds": summary, "ratios": ratios, "rounds": rounds}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"summary": summary, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
