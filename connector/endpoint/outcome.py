"""What one request did, and the headers every answer of the endpoint carries.

Each handler fills an ``Outcome`` as it goes (route, index, ranker, fallback, time per stage, the
experiments that ranked it): it makes the request's log line and metrics, and ``finish`` turns it into
the response headers (``X-Request-Id``, ``X-Hybridrank-Ranker``, ``-Fallback``, ``-Experiment``), with
``X-Elastic-Product`` on every answer, relayed or ours.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.endpoint.metrics import Metrics
from connector.endpoint.wire import (
    EXPERIMENT_HEADER,
    FALLBACK_HEADER,
    PRODUCT_HEADER,
    PRODUCT_VALUE,
    RANKER_HEADER,
    REQUEST_ID_HEADER,
    dumps,
    json_media_type,
)


@dataclass
class Outcome:
    """What one request did, for the log line and the metrics."""

    route: str
    index: str | None = None
    outcome: str = "passthrough"
    reason: str | None = None
    ranker: str | None = None
    fallback: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    request_id: str = ""
    request_time: datetime = field(default_factory=lambda: datetime.now(UTC))  # taken once, at the boundary
    user_id: str | None = None
    session_id: str | None = None
    experiments: list[str] = field(default_factory=list)  # EXPERIMENT_HEADER values, in item order


@contextlib.contextmanager
def stage(outcome: Outcome, name: str, metrics: Metrics) -> Iterator[None]:
    """Time the block as stage ``name`` of the request (summed if it runs more than once) and in the metrics."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        outcome.stages[name] = outcome.stages.get(name, 0.0) + seconds
        metrics.observe(name, seconds)


def json_response(request: Request, body: Any, status: int) -> Response:
    """Our own answer, in the media type the app's client asked for."""
    return Response(dumps(body), status_code=status, media_type=json_media_type(request.headers))


def finish(response: Response, rid: str, outcome: Outcome) -> None:
    """Set the headers that say what the endpoint did (and the product header, unless relayed)."""
    headers = response.headers
    if PRODUCT_HEADER.lower() not in {k.lower() for k in headers}:
        headers[PRODUCT_HEADER] = PRODUCT_VALUE
    headers[REQUEST_ID_HEADER] = rid
    if outcome.ranker:
        headers[RANKER_HEADER] = outcome.ranker
    if outcome.fallback:
        headers[FALLBACK_HEADER] = _header_safe(outcome.fallback)
    if outcome.experiments:
        headers[EXPERIMENT_HEADER] = _header_safe(",".join(dict.fromkeys(outcome.experiments)))


def _header_safe(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:300]
