"""The endpoint under faults, overload and hostile input, measured (not CI-length; loopback only).

Scenarios, each against ``hybridrank serve`` running as a child process over a node of this bench's
own (``--port``, never a shared one), with a small profiled SciFact slice:

- ``es_sigkill``: 20 concurrent searchers and a click poster; Elasticsearch is SIGKILLed, kept down
  ``--outage`` seconds (15), started again. Searches during the outage, how fast they fail, how soon they
  succeed once the node is back; clicks acknowledged vs stored.
- ``endpoint_sigkill``: the same traffic; the endpoint is SIGKILLed mid-run and restarted over its spool.
- ``spool_unwritable``: the spool's disk fills up (a 64 MiB tmpfs filled to the last byte when we may
  mount one, else ``RLIMIT_FSIZE`` on the endpoint); events must answer 503, searches keep working;
  then space comes back.
- ``overload``: 200 concurrent clients (asyncio, honouring ``Retry-After``) for ``--overload-s`` seconds,
  with the configured admission limits, and once more with admission off: statuses, p50/p99 of admitted
  searches as the clients saw them and as the endpoint's own histogram says (after admission), the
  endpoint's peak RSS (VmHWM).
- ``model_hot_swap``: searchers while a truncated, an unreadable and a contract-mismatched model are
  promoted over the serving one, then a good one.
- ``fuzz``: ``--fuzz`` hostile requests (``tests.support.hostile``, hypothesis, derandomized) to the endpoint
  and to Elasticsearch directly, compared.

Each scenario records ``requests``, ``errors_by_status``, ``acknowledged``, ``stored``, ``duplicates``,
``recovery_s`` (plus its own details). Writes ``bench/results/reliability.json``.

    python bench/bench_reliability.py            # ~10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elasticsearch import Elasticsearch  # noqa: E402

from connector.node.launcher import LocalElasticsearch  # noqa: E402
from features.pipeline import FeaturePipeline  # noqa: E402
from hybridrank.config import AdmissionConfig, IndexConfig, load_settings  # noqa: E402
from ltr.evaluation.datasets import shared_datasets_dir  # noqa: E402
from ltr.training.contract import CONTRACT_FILE  # noqa: E402
from ltr.training.model import LIGHTGBM_FILE  # noqa: E402
from ltr.training.registry import ModelRegistry  # noqa: E402
from tests.support.endpoint_process import EndpointProcess, shared_model_caches, write_config  # noqa: E402
from tests.support.event_counts import duplicates, stored_event_ids  # noqa: E402
from tests.support.fault_load import QUERIES, Load, Traffic  # noqa: E402
from tests.support.indices import build_index  # noqa: E402
from tests.support.synthetic_models import train_synthetic  # noqa: E402

INDEX = "reliability-docs"
PROFILE = {"candidate_window": 20, "knn_num_candidates": 50}


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


class Bench:
    """The node, the profiled index and a fresh endpoint (home, spool, events index) per scenario."""

    def __init__(self, node: LocalElasticsearch, work: Path) -> None:
        self.node = node
        self.work = work
        self.es = Elasticsearch(node.url, request_timeout=30)
        self.cache_home = load_settings(None).home

    def endpoint(self, name: str, *, spool: Path | None = None,
                 admission: dict[str, Any] | None = None) -> tuple[EndpointProcess, str, Path]:
        folder = self.work / name
        home = folder / "home"
        shared_model_caches(home, self.cache_home)
        events = f"reliability-events-{name.replace('_', '-')}"
        self.es.options(ignore_status=404).indices.delete(index=events)
        config = write_config(folder / "hybridrank.toml", home=home, es_url=self.node.url, events_index=events,
                              spool_dir=spool or folder / "spool", indices={INDEX: PROFILE}, admission=admission)
        return EndpointProcess(config), events, home

    def stored(self, events: str, acknowledged: set[str], wait_s: float = 120) -> Counter[str]:
        """The events index's click counts once every acknowledged id is in (or ``wait_s`` passed)."""
        deadline = time.monotonic() + wait_s
        while True:
            counts = stored_event_ids(self.es, events) if self.es.indices.exists(index=events) else Counter()
            if acknowledged <= set(counts) or time.monotonic() > deadline:
                return counts
            time.sleep(1.0)


def sigkill_node(node: LocalElasticsearch) -> None:
    pid = node.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while node.status().running:
        time.sleep(0.05)


def outcome(load: Load, counts: Counter[str], **extra: Any) -> dict[str, Any]:
    """The common record of a scenario with searches and clicks."""
    searches, clicks = load.searches.snapshot(), load.clicks.snapshot()
    statuses = Counter(str(a.status) for a in searches + clicks if a.status not in (200, 202))
    lost = load.acknowledged - set(counts)
    return {"requests": len(searches) + len(clicks), "searches": len(searches), "clicks_posted": len(clicks),
            "errors_by_status": dict(sorted(statuses.items())), "acknowledged": len(load.acknowledged),
            "stored": sum(1 for e in counts if e in load.acknowledged),
            "stored_unacknowledged": len(set(counts) - load.acknowledged),
            "lost": len(lost), "duplicates": duplicates(counts), **extra}


def first_ok_after(traffic: Traffic, since: float, ok: int = 200) -> float | None:
    times = [a.at + a.seconds for a in traffic.snapshot() if a.at >= since and a.status == ok]
    return round(min(times) - since, 3) if times else None


# -- scenarios ---------------------------------------------------------------------------------------
def es_sigkill(bench: Bench, outage_s: float) -> dict[str, Any]:
    endpoint, events, _ = bench.endpoint("es_sigkill")
    endpoint.start()
    try:
        with Load(lambda: endpoint.url, INDEX, searchers=20, pause_s=0.02) as load:
            time.sleep(5)
            killed_at = time.monotonic()
            sigkill_node(bench.node)
            time.sleep(outage_s)
            restart_at = time.monotonic()
            bench.node.start(wait_s=180)
            back_at = time.monotonic()
            time.sleep(10)
        counts = bench.stored(events, load.acknowledged)
    finally:
        endpoint.stop()
    during = [a for a in load.searches.snapshot() if killed_at <= a.at < restart_at]
    failed = [a for a in during if a.status != 200]
    after = [a for a in load.searches.snapshot() if a.at >= back_at + 5.0]
    return outcome(load, counts, outage_s=round(restart_at - killed_at, 1),
                   node_restart_s=round(back_at - restart_at, 1),
                   first_error_s=round(min(a.at + a.seconds for a in failed) - killed_at, 3) if failed else None,
                   outage_searches=len(during), outage_statuses=dict(Counter(str(a.status) for a in during)),
                   outage_max_latency_s=round(max((a.seconds for a in during), default=0.0), 3),
                   recovery_s=first_ok_after(load.searches, back_at),
                   errors_5s_after_back=sum(a.status != 200 for a in after))


def endpoint_sigkill(bench: Bench) -> dict[str, Any]:
    endpoint, events, _ = bench.endpoint("endpoint_sigkill")
    endpoint.start()
    try:
        with Load(lambda: endpoint.url, INDEX, searchers=5, pause_s=0.02, click_interval_s=0.005) as load:
            time.sleep(8)
            acknowledged_at_kill = len(load.acknowledged)
            killed_at = time.monotonic()
            endpoint.kill()
            time.sleep(2)
            restart_at = time.monotonic()
            endpoint.start()
            time.sleep(8)
        counts = bench.stored(events, load.acknowledged)
    finally:
        endpoint.stop()
    return outcome(load, counts, acknowledged_at_kill=acknowledged_at_kill,
                   down_s=round(restart_at - killed_at, 1),
                   recovery_s=first_ok_after(load.searches, restart_at),
                   recovery_note="from the restart command to the first 200 (process start and warm-up included)")


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[bool]:
    """A 64 MiB tmpfs at ``path`` if this process may mount one (root with CAP_SYS_ADMIN); yields whether."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> Path:
    """Fill the filesystem of ``path`` to the last byte (ENOSPC); the filler file."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def spool_unwritable(bench: Bench, full_s: float) -> dict[str, Any]:
    disk = bench.work / "spool_unwritable" / "disk"
    with small_disk(disk) as mounted:
        endpoint, events, _ = bench.endpoint("spool_unwritable", spool=disk / "spool")
        endpoint.start()
        filler: Path | None = None
        try:
            with Load(lambda: endpoint.url, INDEX, searchers=5, pause_s=0.02) as load:
                time.sleep(5)
                if mounted:
                    filler = fill(disk)
                else:
                    endpoint.limit_file_size(0)
                full_at = time.monotonic()  # a write into a segment's last, partly used page may still fit
                time.sleep(full_s)
                freed_at = time.monotonic()
                if filler is not None:
                    filler.unlink()
                else:
                    endpoint.limit_file_size(None)
                time.sleep(8)
            counts = bench.stored(events, load.acknowledged)
        finally:
            endpoint.stop()
    clicks_full = [a for a in load.clicks.snapshot() if full_at <= a.at < freed_at]
    searches_full = [a for a in load.searches.snapshot() if full_at <= a.at < freed_at]
    refused = [a for a in clicks_full if a.status == 503]
    return outcome(load, counts, fault="ENOSPC on a full 64 MiB tmpfs" if mounted else "EFBIG (RLIMIT_FSIZE 0)",
                   full_s=round(freed_at - full_at, 1),
                   clicks_while_full=dict(Counter(str(a.status) for a in clicks_full)),
                   refusals_es_shaped=all('"spool_write_exception"' in a.body for a in refused),
                   searches_while_full=dict(Counter(str(a.status) for a in searches_full)),
                   recovery_s=first_ok_after(load.clicks, freed_at, ok=202))


async def _flood(url: str, clients: int, seconds: float) -> tuple[list[tuple[int, float]], float]:
    """``clients`` concurrent loops of searches for ``seconds``: (status, latency) per request."""
    results: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one(worker: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                text = f"{QUERIES[(worker + n) % len(QUERIES)]} {worker % 17}"  # 102 distinct query texts
                body = {"query": {"match": {"text": text}}, "size": 5}
                started = time.monotonic()
                retry_after = 0.0
                try:
                    response = await client.post(f"{url}/{INDEX}/_search", json=body)
                    status = response.status_code
                    retry_after = float(response.headers.get("retry-after", 0))
                except httpx.HTTPError:
                    status = 0
                results.append((status, time.monotonic() - started))
                n += 1
                if status == 429:
                    await asyncio.sleep(retry_after)  # a client honouring Retry-After

        started = time.monotonic()
        await asyncio.gather(*(one(w) for w in range(clients)))
    return results, time.monotonic() - started


def _server_percentiles(url: str) -> dict[str, float | str | None]:
    """p50/p99 of the endpoint's own ``total`` time per search (after admission, to the response),
    read from its Prometheus histogram: the bucket bound where the cumulative count reaches q."""
    text = httpx.get(f"{url}/_hybridrank/metrics", timeout=30).text
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith('hybridrank_stage_seconds_bucket{') and 'stage="total"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    out: dict[str, float | str | None] = {}
    finite = [b for b, _ in buckets if b != float("inf")]
    for q in (50, 99):
        reached = next((b for b, c in buckets if total and c >= total * q / 100), None)
        if reached == float("inf"):  # beyond the histogram's last bound
            out[f"server_p{q}_ms_at_most"] = f"> {finite[-1] * 1000:.0f}"
        else:
            out[f"server_p{q}_ms_at_most"] = None if reached is None else round(reached * 1000, 1)
    return out


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def overload(bench: Bench, clients: int, seconds: float, limits: dict[str, Any]) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for label, admission in (("admission_on", limits), ("admission_off", {"enabled": False})):
        endpoint, _, _ = bench.endpoint(f"overload_{label}", admission=admission)
        endpoint.start()
        try:
            results, elapsed = asyncio.run(_flood(endpoint.url, clients, seconds))
            rss = _peak_rss_mib(endpoint.pid)
            server = _server_percentiles(endpoint.url)
        finally:
            endpoint.stop()
        admitted = np.array([s for status, s in results if status == 200])
        runs[label] = {
            "requests": len(results), "errors_by_status": dict(Counter(str(s) for s, _ in results if s != 200)),
            "admitted_per_s": round(len(admitted) / elapsed, 1),
            "p50_admitted_ms": round(float(np.percentile(admitted, 50)) * 1000, 1) if len(admitted) else None,
            "p99_admitted_ms": round(float(np.percentile(admitted, 99)) * 1000, 1) if len(admitted) else None,
            "max_admitted_ms": round(float(admitted.max()) * 1000, 1) if len(admitted) else None,
            "peak_rss_mib": rss, **server,
        }
        log(f"  overload {label}: {runs[label]}")
    on = runs["admission_on"]
    return {"requests": on["requests"], "errors_by_status": on["errors_by_status"], "acknowledged": None,
            "stored": None, "duplicates": None, "recovery_s": None, "clients": clients, "seconds": seconds,
            "admission": AdmissionConfig(**limits).model_dump(), **runs}


def model_hot_swap(bench: Bench) -> dict[str, Any]:
    endpoint, _, home = bench.endpoint("model_hot_swap")
    registry = ModelRegistry(home)
    pipeline = FeaturePipeline.from_config(IndexConfig(**PROFILE))
    for model_id in ("m-serving", "m-truncated", "m-garbage", "m-mismatch", "m-next"):
        train_synthetic(pipeline, "bm25_text", 40.0, registry.model_dir(INDEX, model_id), model_id)
    truncated = registry.model_dir(INDEX, "m-truncated") / LIGHTGBM_FILE
    truncated.write_bytes(truncated.read_bytes()[:300])
    garbage = registry.model_dir(INDEX, "m-garbage")
    (garbage / LIGHTGBM_FILE).write_bytes(b"tree\nnot a model\n")
    from ltr.training.scorer import file_sha256

    contract = json.loads((garbage / CONTRACT_FILE).read_text())
    contract["model_sha256"] = file_sha256(garbage / LIGHTGBM_FILE)
    (garbage / CONTRACT_FILE).write_text(json.dumps(contract))
    mismatch = registry.model_dir(INDEX, "m-mismatch") / CONTRACT_FILE
    contract = json.loads(mismatch.read_text())
    contract["feature_config_hash"] = "0" * 16
    mismatch.write_text(json.dumps(contract))
    registry.promote(INDEX, "m-serving")
    endpoint.start()
    rankers: Counter[str] = Counter()
    refusals: list[str] = []
    try:
        with Load(lambda: endpoint.url, INDEX, searchers=5, pause_s=0.02) as load:
            time.sleep(3)
            for bad in ("m-truncated", "m-garbage", "m-mismatch"):
                registry.promote(INDEX, bad)
                time.sleep(3)
                state = httpx.get(f"{endpoint.url}/_hybridrank/health", timeout=10).json()["rankers"]
                slot = state.get(f"{INDEX}/default", {})
                refusals.append(f"serving {slot.get('model')} ({slot.get('fallback') or 'no fallback'}); "
                                f"refused: {slot.get('refused', 'nothing')}")
            registry.promote(INDEX, "m-next")
            swapped_at = time.monotonic()
            time.sleep(4)
            for _ in range(20):
                answer = httpx.post(f"{endpoint.url}/{INDEX}/_search", timeout=10,
                                    json={"query": {"match": {"text": "DNA repair"}}, "size": 5})
                rankers[answer.headers.get("x-hybridrank-ranker", "?")] += 1
    finally:
        endpoint.stop()
    searches = load.searches.snapshot()
    return {"requests": len(searches), "errors_by_status": dict(Counter(str(a.status) for a in searches
                                                                        if a.status != 200)),
            "acknowledged": None, "stored": None, "duplicates": None,
            "recovery_s": None, "refused": refusals, "rankers_after_good_promotion": dict(rankers),
            "good_swap_after_s": round(time.monotonic() - swapped_at, 1)}


def fuzz(bench: Bench, examples: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings

    from tests.support.hostile import compare, hostile_requests

    endpoint, _, _ = bench.endpoint("fuzz")
    endpoint.start()
    verdicts: Counter[str] = Counter()
    reranked = 0
    samples: dict[str, str] = {}
    started = time.monotonic()
    try:
        with httpx.Client(timeout=20) as client:
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(hostile_requests())
            def run(request: Any) -> None:
                nonlocal reranked
                verdict = compare(client, endpoint.url, bench.node.url, INDEX, request)
                verdicts[verdict.verdict] += 1
                reranked += verdict.reranked
                if verdict.verdict not in ("ok", "window") and verdict.verdict not in samples:
                    samples[verdict.verdict] = f"{request.method} {request.path} {request.params} " \
                                               f"{request.headers} {request.raw[:200]!r} -> {verdict.detail[:200]}"

            run()
        alive = endpoint.process is not None and endpoint.process.poll() is None
    finally:
        endpoint.stop()
    mismatches = {k: v for k, v in verdicts.items() if k.startswith("mismatch")}
    return {"bodies": sum(verdicts.values()), "seconds": round(time.monotonic() - started, 1),
            "own_5xx": verdicts.get("own_5xx", 0), "hangs": verdicts.get("hang", 0),
            "status_mismatches": sum(mismatches.values()), "mismatch_classes": mismatches,
            "same_status": verdicts.get("ok", 0), "reranked_same_status": reranked,
            "window_400_by_design": verdicts.get("window", 0),
            "es_closed_connection": verdicts.get("es_no_answer", 0), "endpoint_alive_after": alive,
            "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9282, help="HTTP port of the bench's own node")
    parser.add_argument("--outage", type=float, default=15.0)
    parser.add_argument("--full-s", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--overload-s", type=float, default=30.0)
    parser.add_argument("--fuzz", type=int, default=5000)
    parser.add_argument("--admission", default="", help="overload only: admission limits to try instead of the "
                        "defaults, e.g. max_in_flight=8,max_queued=16,queue_timeout_s=1")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reliability.json")
    args = parser.parse_args()
    limits = {k: float(v) if "." in v else int(v) for k, v in (p.split("=") for p in args.admission.split(",") if p)}

    node = LocalElasticsearch.from_settings(load_settings(None), port=args.port, name="hybridrank-bench-reliability")
    node.start(wait_s=180)
    work = Path(tempfile.mkdtemp(prefix="hybridrank-reliability-"))
    bench = Bench(node, work)
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "note": "2 cores shared with other work; loopback only"},
                               "scenarios": {}}
    if args.out.exists() and args.only:
        results = json.loads(args.out.read_text())
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "endpoint_sigkill": lambda: endpoint_sigkill(bench),
        "spool_unwritable": lambda: spool_unwritable(bench, args.full_s),
        "model_hot_swap": lambda: model_hot_swap(bench),
        "overload": lambda: overload(bench, args.clients, args.overload_s, limits),
        "es_sigkill": lambda: es_sigkill(bench, args.outage),  # last but fuzz: it restarts the node
    }
    try:
        bench.es.options(ignore_status=404).indices.delete(index=INDEX)
        from connector.embedding.embedder import embedder_from_settings

        build_index(bench.es, embedder_from_settings(load_settings(None)), shared_datasets_dir(), INDEX)
        for name, step in steps.items():
            if args.only and name not in args.only:
                continue
            log(f"scenario {name}")
            results["scenarios"][name] = step()
            log(f"  {json.dumps(results['scenarios'][name])[:600]}")
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        if not args.only or "fuzz" in args.only:
            log(f"fuzz: {args.fuzz} hostile requests")
            results["fuzz"] = fuzz(bench, args.fuzz)
            log(f"  {json.dumps(results['fuzz'])[:600]}")
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.out}")
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
