"""Prometheus metrics of the endpoint, on a registry of its own (one per app, so tests don't clash).

- ``hybridrank_requests_total{route, outcome}``: route is search / msearch / passthrough / admin;
  outcome is reranked / passthrough / fallback / error / the passthrough status class.
- ``hybridrank_stage_seconds{stage}``: embed, retrieve, features, score, page (fetching the page's hits), total.
- ``hybridrank_fallbacks_total{reason}``: searches answered in hybrid order because the model could not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

STAGES = ("embed", "retrieve", "features", "score", "page", "total")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Counters and histograms of one endpoint instance."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hybridrank_requests", "Requests answered, by route and outcome.",
                                ("route", "outcome"), registry=self.registry)
        self.stage_seconds = Histogram("hybridrank_stage_seconds", "Latency of each reranking stage.",
                                       ("stage",), buckets=_BUCKETS, registry=self.registry)
        self.fallbacks = Counter("hybridrank_fallbacks", "Searches answered in hybrid order instead of the model.",
                                 ("reason",), registry=self.registry)
        self.model_loaded = Gauge("hybridrank_model_loaded", "1 if a learned model serves the profile.",
                                  ("index", "model"), registry=self.registry)

        # each search counts once and observes ~6 stages: the labelled children are looked up once each
        # (``labels`` takes a lock and builds a key per call)
        self._counted: dict[tuple[str, str], Any] = {}
        self._stages: dict[str, Any] = {}

    def count(self, route: str, outcome: str) -> None:
        child = self._counted.get((route, outcome))
        if child is None:
            child = self._counted[(route, outcome)] = self.requests.labels(route=route, outcome=outcome)
        child.inc()

    def fallback(self, reason: str) -> None:
        self.fallbacks.labels(reason=reason.split(":", 1)[0][:60]).inc()

    def observe(self, stage: str, seconds: float) -> None:
        child = self._stages.get(stage)
        if child is None:
            child = self._stages[stage] = self.stage_seconds.labels(stage=stage)
        child.observe(seconds)

    @contextlib.contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - start)

    def render(self) -> bytes:
        return generate_latest(self.registry)
