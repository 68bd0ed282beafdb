"""Feature logging: retrieve each query's window, compute every feature, stream rows to Parquet.

One row per (query, candidate): ``qid``, ``doc_id``, ``label`` (the judged grade, 0 if unjudged),
``query_time`` (from the judgment source, null for explicit qrels), each leg's raw score (``leg_bm25``,
``leg_knn``; NaN = not found by that leg), then one float64 column per feature, in pipeline order.
The Parquet schema metadata records the feature names, the feature-config hash and the request time.

Parity with live ranking: the query vector is always ``embedder.encode_query(text)`` (the
retriever embeds queries one at a time through it), the legs carry the exact scores built by
``FeaturePipeline.exact_scoring`` (as the endpoint's legs do), and features come from
``FeaturePipeline.compute_many``, the code the reranker calls.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from features.base import as_utc
from features.pipeline import FeaturePipeline, FeatureRequest
from hybridrank.errors import DataError, HybridRankError

if TYPE_CHECKING:
    import pyarrow as pa

    from connector.retrieval.candidates import Candidate
    from connector.retrieval.retriever import QueryLegs, Retriever
    from features.exact_scoring import ExactScoring
    from ltr.evaluation.judgments import JudgmentSource

META_KEY = b"hybridrank"
BASE_COLUMNS = ("qid", "doc_id", "label", "query_time", "leg_bm25", "leg_knn")


def window_candidates(legs: QueryLegs, config: Any) -> list[Candidate]:
    """Every candidate either leg found (the rerank pool), in RRF order, ties by doc id."""
    from connector.retrieval.fusion import rrf_score

    # scored aside (not via fusion.rrf) so the shared candidates' fused_score stays untouched
    return sorted(legs.candidates.values(), key=lambda c: (-rrf_score(c.leg_ranks, config.rrf_k), c.doc_id))


def retrieve_requests(
    retriever: Retriever,
    query_texts: Sequence[str],
    *,
    request_time: datetime,
    window: int | None = None,
    filters: Sequence[dict[str, Any]] = (),
    source: bool | Sequence[str] = False,
    pipeline: FeaturePipeline | None = None,
) -> list[FeatureRequest]:
    """Both legs for the queries (one ``_msearch``), as pipeline requests with the live query vectors;
    with ``pipeline``, the legs also bring its exact scores (``FeaturePipeline.exact_scoring``, the
    builder the endpoint's legs use), so ``compute_many`` needs no search of its own."""
    scoring = None
    if pipeline is not None:
        lang = retriever.vector_script_lang

        def scoring(text: str, vector: np.ndarray) -> ExactScoring | None:
            return pipeline.exact_scoring(text, vector, lang)

    legs = retriever.legs_many(query_texts, window=window, filters=filters, source=source, scoring=scoring)
    return [FeatureRequest(text, retriever.embedder.encode_query(text), window_candidates(q, retriever.config),
                           request_time) for text, q in zip(query_texts, legs, strict=True)]


@dataclass
class LogSummary:
    path: Path
    queries: int
    rows: int
    seconds: float
    feature_names: list[str]
    queries_without_judged_candidate: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else math.inf


def _schema(names: Sequence[str], metadata: dict[str, Any]) -> pa.Schema:
    import pyarrow as pa

    fields = [pa.field("qid", pa.string()), pa.field("doc_id", pa.string()), pa.field("label", pa.int32()),
              pa.field("query_time", pa.timestamp("us", tz="UTC")), pa.field("leg_bm25", pa.float64()),
              pa.field("leg_knn", pa.float64())]
    fields += [pa.field(n, pa.float64()) for n in names]
    return pa.schema(fields, metadata={META_KEY: json.dumps(metadata).encode()})


def log_features(
    retriever: Retriever,
    pipeline: FeaturePipeline,
    queries: Mapping[str, str],
    judgments: JudgmentSource | None,
    out: str | Path,
    *,
    request_time: datetime,
    window: int | None = None,
    batch_size: int = 32,
    metadata: Mapping[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
    drop_query_doc: bool = False,
) -> LogSummary:
    """Write the feature log of ``queries`` to ``out`` (Parquet, one row group per batch).

    ``drop_query_doc``: a document whose id is the query id leaves the window before its features are
    computed (the BEIR ArguAna convention, applied before reranking so that window-relative features
    and fusions are not measured against the query's own text).

    The file appears complete or not at all: rows stream to ``<out>.partial``, renamed at the end.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not queries:
        raise DataError("no queries to log")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    request_time = as_utc(request_time)
    names = pipeline.names
    meta = {"feature_names": names, "feature_config_hash": pipeline.config_hash(),
            "feature_params": pipeline.feature_params(), "context_params": pipeline.context_params(),
            "request_time": request_time.isoformat(), "index": retriever.index,
            "window": window or retriever.config.candidate_window, "drop_query_doc": drop_query_doc,
            **(metadata or {})}
    schema = _schema(names, meta)
    partial = out.with_name(out.name + ".partial")
    started = time.perf_counter()
    rows = 0
    unjudged_windows = 0
    items = [(qid, text) for qid, text in queries.items() if text and text.strip()]
    if not items:
        raise DataError("every query text is blank: nothing to log")
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                requests = retrieve_requests(retriever, [t for _, t in batch], request_time=request_time,
                                             window=window, pipeline=pipeline)
                if drop_query_doc:
                    requests = [replace(req, candidates=[c for c in req.candidates if c.doc_id != qid])
                                for (qid, _), req in zip(batch, requests, strict=True)]
                matrices = pipeline.compute_many(retriever.client, retriever.index, requests)
                columns: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
                blocks: list[np.ndarray] = []
                for (qid, _), req, matrix in zip(batch, requests, matrices, strict=True):
                    labels = judgments.labels(qid) if judgments is not None else {}
                    qtime = judgments.query_time(qid) if judgments is not None else None
                    if not any(labels.get(c.doc_id, 0) > 0 for c in req.candidates):
                        unjudged_windows += 1
                    for cand in req.candidates:
                        columns["qid"].append(qid)
                        columns["doc_id"].append(cand.doc_id)
                        columns["label"].append(int(labels.get(cand.doc_id, 0)))
                        columns["query_time"].append(as_utc(qtime) if qtime else None)
                        columns["leg_bm25"].append(cand.leg_scores.get("bm25", math.nan))
                        columns["leg_knn"].append(cand.leg_scores.get("knn", math.nan))
                    blocks.append(matrix)
                block = np.vstack(blocks) if blocks else np.zeros((0, len(names)))
                arrays = [pa.array(columns[c], type=schema.field(c).type) for c in BASE_COLUMNS]
                arrays += [pa.array(block[:, j], type=pa.float64()) for j in range(len(names))]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += block.shape[0]
                if on_batch is not None:
                    on_batch(len(batch))
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return LogSummary(out, len(items), rows, time.perf_counter() - started, names, unjudged_windows, meta)


@dataclass
class FeatureLog:
    """A feature log read back: aligned arrays, one entry per row."""

    qids: np.ndarray  # object (str)
    doc_ids: np.ndarray  # object (str)
    labels: np.ndarray  # int32
    query_times: list[datetime | None]
    matrix: np.ndarray  # float64, rows x features
    feature_names: list[str]
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def groups(self) -> Iterator[tuple[str, np.ndarray]]:
        """(qid, row indices) per query, in first-appearance order."""
        order: dict[str, list[int]] = {}
        for i, qid in enumerate(self.qids):
            order.setdefault(str(qid), []).append(i)
        for qid, idx in order.items():
            yield qid, np.asarray(idx, dtype=np.int64)

    def features_of(self, qid: str) -> dict[str, np.ndarray]:
        """doc_id -> its feature row, for one query (used by parity checks)."""
        mask = self.qids == qid
        return {str(d): self.matrix[i] for d, i in zip(self.doc_ids[mask], np.flatnonzero(mask), strict=True)}


def read_feature_log(path: str | Path) -> FeatureLog:
    """Read a log written by ``log_features``; ``DataError`` if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet feature log ({exc})") from exc
    raw_meta = (table.schema.metadata or {}).get(META_KEY)
    if raw_meta is None:
        raise DataError(f"{path}: not a hybridrank feature log (no '{META_KEY.decode()}' metadata)")
    meta = json.loads(raw_meta)
    names = list(meta["feature_names"])
    missing = [c for c in (*BASE_COLUMNS, *names) if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: columns missing: {', '.join(missing)}")
    matrix = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names]) \
        if len(table) else np.zeros((0, len(names)))
    times = table.column("query_time").to_pylist()
    return FeatureLog(
        qids=np.asarray(table.column("qid").to_pylist(), dtype=object),
        doc_ids=np.asarray(table.column("doc_id").to_pylist(), dtype=object),
        labels=table.column("label").to_numpy(zero_copy_only=False).astype(np.int32),
        query_times=times,
        matrix=matrix,
        feature_names=names,
        metadata=meta,
    )


def check_request_time(value: datetime | None) -> datetime:
    if value is None:
        raise HybridRankError("a request_time is required (features never read the wall clock)")
    return as_utc(value)
