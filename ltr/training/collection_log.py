"""Feature-log a judged collection's split (``features log``, ``train --collection``): in this process,
or in worker processes (``ltr.training.parallel_log``) when ``[training] log_workers`` > 1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from features.pipeline import FeaturePipeline
from ltr.evaluation.datasets import load_collection
from ltr.evaluation.judgments import Judgments
from ltr.training.feature_log import LogSummary, log_features
from ltr.training.parallel_log import log_features_parallel

if TYPE_CHECKING:
    from hybridrank.config import Settings


def log_collection_split(settings: Settings, *, collection: str, split: str, index: str, out: Path,
                         request_time: datetime, window: int | None = None, limit_queries: int | None = None,
                         batch_size: int = 32, on_batch: Callable[[int], None] | None = None,
                         on_total: Callable[[int], None] | None = None, workers: int | None = None) -> LogSummary:
    """Retrieve and feature-log the queries of a collection's ``split`` on ``index`` (``features log``,
    ``train --collection``): labels from the split's qrels, the index's live feature pipeline.
    ``on_total`` hears the number of queries once known, ``on_batch`` each batch done (progress bars).
    ``workers`` > 1 (default ``[training] log_workers``) computes it in that many processes
    (``ltr.training.parallel_log``)."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever

    coll = load_collection(collection, home=settings.home)
    judgments = Judgments(coll.qrels(split), name=f"{coll.name}:{split}")
    queries = coll.split_queries(split, limit=limit_queries)
    if on_total is not None:
        on_total(len(queries))
    meta = {"collection": str(collection), "collection_name": coll.name, "split": split}
    workers = settings.training.log_workers if workers is None else workers
    if workers > 1:
        return log_features_parallel(settings, index, queries, judgments, out, workers=workers,
                                     request_time=request_time, window=window, batch_size=batch_size,
                                     metadata=meta, on_batch=on_batch)
    config = settings.index(index)
    retriever = Retriever(make_client(settings), index, config, embedder_from_settings(settings))
    return log_features(retriever, FeaturePipeline.from_config(config), queries, judgments, out,
                        request_time=request_time, window=window, batch_size=batch_size, metadata=meta,
                        on_batch=on_batch)
