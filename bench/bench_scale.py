"""How the cost of hybrid search grows with the index: 10k, 100k and 1,000,000 synthetic documents.

For each size, one index is built on the running cluster and measured:

- **documents**: title and text drawn word by word from the real vocabulary of SciFact + ArguAna
  (unigram frequencies of their corpora; document lengths drawn from their real lengths), so BM25
  sees a natural Zipf-like term distribution;
- **vectors**: 384-d, each a real MiniLM document vector of those corpora (read from the shared
  vector cache; random unit vectors if it is empty) plus Gaussian noise (cosine ~0.8 to it), then
  unit-normalised, so the kNN graph has the clustered structure of real embeddings;
- **the mapping** the project builds (``connector.indexing.mapping.index_body``) with the vector
  field as ``int8_hnsw`` (the quantised HNSW; ``--vector-index-type`` to change), 1 shard, 0 replicas,
  refresh off during the bulk load and back to 1 s after it.

Recorded per size: ``build_s`` (bulk load + final refresh, wall clock), ``index_bytes`` (primary store
size after the refresh, no force-merge), and hybrid p50/p99 latency of the same real SciFact/ArguAna
query texts **direct** (``connector.retrieval.Retriever`` linear fusion: both legs in one ``_msearch``,
query vectors cached) and **through the endpoint** (``hybridrank serve`` in a subprocess, the app's
plain ``match`` query, its query-vector cache warm), one query at a time, the two alternating query
by query so both see the same machine load. ``/proc/loadavg`` is recorded beside each row.

Results are merged into ``bench/results/scale.json`` by size (a later run of one size replaces only
that row). Indices are kept (``--drop`` deletes each after measuring).

    python bench/bench_scale.py --docs 10000 100000
    nohup nice -n 19 python bench/bench_scale.py --docs 1000000 --renice-es > /tmp/scale-1m.log 2>&1 &
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_endpoint import free_port, start_endpoint  # type: ignore[import-not-found]

from ltr.evaluation.datasets import shared_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "scale.json"
DIMS = 384
COLLECTIONS = ("scifact", "arguana")
WORD = re.compile(r"[a-z][a-z0-9]+")


class Vocabulary:
    """Unigram frequencies and document lengths of real corpora; draws synthetic titles and texts."""

    def __init__(self, shared: Path) -> None:
        counts: Counter[str] = Counter()
        title_lengths, text_lengths = [], []
        for name in COLLECTIONS:
            with gzip.open(shared / name / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
                for line in handle:
                    doc = json.loads(line)
                    title, text = WORD.findall(doc.get("title", "").lower()), WORD.findall(doc["text"].lower())
                    counts.update(title)
                    counts.update(text)
                    title_lengths.append(len(title))
                    text_lengths.append(min(len(text), 400))
        words = [w for w, n in counts.items() if n >= 2]
        self.words = np.array(words, dtype=object)
        freq = np.array([counts[w] for w in words], dtype=np.float64)
        self.cdf = np.cumsum(freq / freq.sum())
        self.title_lengths = np.array(title_lengths)
        self.text_lengths = np.maximum(np.array(text_lengths), 5)

    def draw(self, rng: np.random.Generator, n: int, lengths: np.ndarray) -> list[str]:
        chosen = rng.choice(lengths, n)
        picks = self.words[np.searchsorted(self.cdf, rng.random(int(chosen.sum())), side="right").clip(
            0, len(self.words) - 1)]
        out, start = [], 0
        for length in chosen:
            out.append(" ".join(picks[start:start + length]))
            start += length
        return out


def real_centres(home: Path, limit: int = 1000) -> np.ndarray:
    """The first ``limit`` real document vectors of the shared SQLite vector cache(s) (the same set at every
    size); random unit vectors if there are fewer."""
    found: list[np.ndarray] = []
    for db in sorted((home / "embeddings").glob("**/*.sqlite*")):
        if db.suffix not in (".sqlite", ".sqlite3"):
            continue
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT vec FROM vectors LIMIT ?", (limit - len(found),)).fetchall()
        found.extend(v for v in (np.frombuffer(r[0], dtype=np.float32) for r in rows) if v.shape == (DIMS,))
        if len(found) >= limit:
            break
    if len(found) < limit:
        print(f"only {len(found)} cached real vectors: using random unit centres", file=sys.stderr)
        found = list(np.random.default_rng(1).standard_normal((limit, DIMS)).astype(np.float32))
    centres = np.stack(found)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    noise = rng.standard_normal((n, DIMS)).astype(np.float32) * (0.75 / np.sqrt(DIMS))
    out = centres[rng.integers(0, len(centres), n)] + noise
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def documents(vocab: Vocabulary, centres: np.ndarray, total: int, index: str, chunk: int,
              seed: int) -> Iterator[dict[str, Any]]:
    from connector.indexing.mapping import ID_FIELD

    rng = np.random.default_rng(seed)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        titles, texts = vocab.draw(rng, n, vocab.title_lengths), vocab.draw(rng, n, vocab.text_lengths)
        vecs = np.round(vectors(rng, centres, n), 6)
        for i in range(n):
            doc_id = f"s{start + i}"
            yield {"_index": index, "_id": doc_id, "_source": {
                "title": titles[i], "text": texts[i], "embedding": vecs[i].tolist(), ID_FIELD: doc_id}}


def build(client: Any, name: str, total: int, config: Any, vocab: Vocabulary, centres: np.ndarray) -> dict[str, Any]:
    from elasticsearch.helpers import parallel_bulk

    from connector.indexing.index_setup import create_index

    client.options(ignore_status=404).indices.delete(index=name)
    create_index(client, name, config, dims=DIMS)
    client.indices.put_settings(index=name, settings={"index": {"refresh_interval": "-1", "number_of_replicas": 0}})
    began = time.monotonic()
    docs = documents(vocab, centres, total, name, 2000, seed=total)
    results = parallel_bulk(client.options(request_timeout=600), docs, thread_count=2, chunk_size=500,
                            queue_size=2, raise_on_error=False)
    for done, (ok, info) in enumerate(results, start=1):
        if not ok:
            raise SystemExit(f"bulk failure: {info}")
        if done % 50_000 == 0:
            print(f"  {name}: {done} docs, {time.monotonic() - began:.0f} s, load {_load()}", file=sys.stderr,
                  flush=True)
    client.indices.put_settings(index=name, settings={"index": {"refresh_interval": "1s"}})
    client.options(request_timeout=3600).indices.refresh(index=name)
    build_s = time.monotonic() - began
    client.options(request_timeout=3600).indices.flush(index=name)
    stats = client.indices.stats(index=name, metric=["store", "docs", "segments"])["_all"]["primaries"]
    assert stats["docs"]["count"] == total, stats["docs"]
    return {"build_s": round(build_s, 1), "index_bytes": int(stats["store"]["size_in_bytes"]),
            "segments": int(stats["segments"]["count"])}


def queries(shared: Path, limit: int) -> list[str]:
    texts: list[str] = []
    for name in COLLECTIONS:
        with open(shared / name / "queries.jsonl", encoding="utf-8") as handle:
            texts.extend(json.loads(line)["text"][:300] for line in handle)
    rng = np.random.default_rng(3)
    return [texts[i] for i in rng.choice(len(texts), limit, replace=False)]


def latency(settings: Any, name: str, config: Any, embedder: Any, texts: list[str], port: int) -> dict[str, Any]:
    import httpx

    from connector.client import make_client
    from connector.retrieval.retriever import Retriever

    retriever = Retriever(make_client(settings, timeout_s=60), name, config, embedder)
    direct_ms, endpoint_ms = [], []
    errors: Counter[str] = Counter()  # answers other than 200, by status and reason: counted, not timed
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as app:
        def via_endpoint(text: str) -> float | None:
            began = time.perf_counter()
            response = app.post(f"/{name}/_search", json={"query": {"match": {"text": text}}, "size": 10})
            if response.status_code != 200:
                errors[f"{response.status_code} {response.text[:120]}"] += 1
                return None
            return (time.perf_counter() - began) * 1000

        def direct(text: str) -> float | None:
            began = time.perf_counter()
            retriever.search(text, mode="linear")
            return (time.perf_counter() - began) * 1000

        for text in texts:  # warm: query vectors cached on both sides, the index's files in the page cache
            direct(text)
            via_endpoint(text)
        for i, text in enumerate(texts):
            pair = (direct, via_endpoint) if i % 2 == 0 else (via_endpoint, direct)
            for measure in pair:
                took = measure(text)
                if took is not None:
                    (direct_ms if measure is direct else endpoint_ms).append(took)
    if errors:
        print(f"  endpoint answers other than 200: {dict(errors)}", file=sys.stderr)
    return {"direct_p50_ms": round(float(np.percentile(direct_ms, 50)), 2),
            "direct_p99_ms": round(float(np.percentile(direct_ms, 99)), 2),
            "endpoint_p50_ms": round(float(np.percentile(endpoint_ms, 50)), 2),
            "endpoint_p99_ms": round(float(np.percentile(endpoint_ms, 99)), 2),
            "endpoint_errors": sum(errors.values())}


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def _renice_es(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_nodes/_local/process?filter_path=nodes.*.process.id", timeout=10) as r:
        for node in json.loads(r.read())["nodes"].values():
            subprocess.run(["renice", "-n", "19", "-p", str(node["process"]["id"])], check=False)


def write_row(row: dict[str, Any], out: Path) -> None:
    result = json.loads(out.read_text()) if out.exists() else {"rows": []}
    result["rows"] = sorted([r for r in result["rows"] if r["docs"] != row["docs"]] + [row], key=lambda r: r["docs"])
    result["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["method"] = __doc__.split("\n\n")[0] + " See bench/bench_scale.py's docstring."
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vector-index-type", default="int8_hnsw",
                        choices=["hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"])
    parser.add_argument("--port", type=int, default=None, help="Port of the endpoint (default: a free one).")
    parser.add_argument("--renice-es", action="store_true", help="renice -n 19 the cluster's local node(s) first.")
    parser.add_argument("--drop", action="store_true", help="Delete each index after measuring it.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from connector.client import cluster_url, make_client
    from hybridrank.config import IndexConfig, load_settings

    settings = load_settings(None)
    url = cluster_url(settings)
    if args.renice_es:
        _renice_es(url)
    shared = shared_datasets_dir()
    vocab = Vocabulary(shared)
    centres = real_centres(Path(settings.home))
    texts = queries(shared, args.queries)
    from connector.embedding.embedder import embedder_from_settings

    embedder = embedder_from_settings(settings)
    embedder.encode_query(texts[0])  # the ONNX query model is exported once, before the endpoint needs it
    client = make_client(settings, timeout_s=600)
    config = IndexConfig(vector_index_type=args.vector_index_type, shards=1, replicas=0, candidate_window=100,
                         knn_num_candidates=200)
    print(f"vocabulary {len(vocab.words)} words, {len(centres)} vector centres, {len(texts)} queries",
          file=sys.stderr)
    for total in args.docs:
        name = f"bench-scale-{total}"
        load_before = _load()
        print(f"building {name} ...", file=sys.stderr, flush=True)
        built = build(client, name, total, config, vocab, centres)
        print(f"  built: {built}", file=sys.stderr, flush=True)
        home = Path(settings.home)
        cfg = home / f"bench-scale-{total}.toml"
        cfg.write_text((ROOT / "hybridrank.toml").read_text() + f"\n[indices.{json.dumps(name)}]\n"
                       f"vector_index_type = {json.dumps(args.vector_index_type)}\ncandidate_window = 100\n")
        port = args.port or free_port()
        proc = start_endpoint(url, port, str(cfg), wait_s=900)
        try:
            timings = latency(settings, name, config, embedder, texts, port)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        row = {"docs": total, **built, **timings, "vector_index_type": args.vector_index_type,
               "queries": len(texts), "loadavg_before": load_before, "loadavg_after": _load(),
               "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        write_row(row, args.out)
        print(json.dumps(row), flush=True)
        if args.drop:
            client.options(ignore_status=404).indices.delete(index=name)


if __name__ == "__main__":
    main()
