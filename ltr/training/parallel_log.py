"""Feature logging in parallel worker processes: the queries cut into contiguous shards, one per worker.

Each worker is a fresh process (``spawn``: no torch or client state inherited) that builds its own
client, embedder and the index's live feature pipeline from the settings and runs ``log_features``
on its shard into a part file; the parts are then concatenated in shard order into one log, so the
result holds the same rows in the same order as a one-process log of the same queries (the same code
computes them: training/serving parity is untouched). Throughput grows with workers while there are
cores for them and for Elasticsearch (``bench/bench_distributed.py`` measures 1 vs 2).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrank.errors import DataError

if TYPE_CHECKING:
    from hybridrank.config import Settings
    from ltr.evaluation.judgments import JudgmentSource
    from ltr.training.feature_log import LogSummary


def shards(items: list[tuple[str, str]], workers: int) -> list[list[tuple[str, str]]]:
    """``items`` cut into at most ``workers`` contiguous, near-equal, non-empty shards."""
    count = max(1, min(workers, len(items)))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _log_shard(settings: Settings, index: str, queries: dict[str, str], judgments: JudgmentSource | None,
               out: Path, request_time: datetime, window: int | None, batch_size: int,
               metadata: dict[str, Any]) -> LogSummary:
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from ltr.training.feature_log import log_features

    config = settings.index(index)
    retriever = Retriever(make_client(settings), index, config, embedder_from_settings(settings))
    return log_features(retriever, FeaturePipeline.from_config(config), queries, judgments, out,
                        request_time=request_time, window=window, batch_size=batch_size, metadata=metadata)


def log_features_parallel(settings: Settings, index: str, queries: Mapping[str, str],
                          judgments: JudgmentSource | None, out: str | Path, *, workers: int,
                          request_time: datetime, window: int | None = None, batch_size: int = 32,
                          metadata: Mapping[str, Any] | None = None,
                          on_batch: Callable[[int], None] | None = None) -> LogSummary:
    """The feature log of ``queries`` on ``index``, computed by ``workers`` processes (``on_batch``
    hears each shard as it completes). The file appears complete or not at all."""
    import pyarrow.parquet as pq

    from ltr.training.feature_log import LogSummary

    items = [(qid, text) for qid, text in queries.items() if text and text.strip()]
    if not items:
        raise DataError("no queries to log")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = [out.with_name(f".{out.name}.part{i}") for i in range(len(shards(items, workers)))]
    started = time.perf_counter()
    summaries: list[LogSummary] = []
    try:
        with ProcessPoolExecutor(max_workers=len(parts), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_log_shard, settings, index, dict(shard), judgments, part, request_time, window,
                                   batch_size, dict(metadata or {}))
                       for shard, part in zip(shards(items, workers), parts, strict=True)]
            for future, shard in zip(futures, shards(items, workers), strict=True):
                summaries.append(future.result())
                if on_batch is not None:
                    on_batch(len(shard))
        partial = out.with_name(out.name + ".partial")
        first = pq.ParquetFile(parts[0])
        with pq.ParquetWriter(partial, first.schema_arrow, compression="zstd") as writer:
            for part in parts:
                writer.write_table(pq.read_table(part))
        partial.replace(out)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".partial").unlink(missing_ok=True)
    head = summaries[0]
    return LogSummary(out, sum(s.queries for s in summaries), sum(s.rows for s in summaries),
                      time.perf_counter() - started, head.feature_names,
                      sum(s.queries_without_judged_candidate for s in summaries), head.metadata)
