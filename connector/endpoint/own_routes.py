"""The endpoint's own routes, under ``/_hybridrank/``: events in, metrics and health out.

``POST /_hybridrank/events`` takes the apps' clicks (one object, an array, or NDJSON;
``connector.events.spool.parse_events`` checks them) and answers 202 once they are fsynced to disk in
the spool, 400 for an invalid event, 503 with ``Retry-After`` if the spool cannot be written (disk full,
unwritable: nothing of the request is acknowledged, and nothing half-written stays behind; retry).
``GET /_hybridrank/metrics`` is Prometheus text; ``GET /_hybridrank/health`` names the upstream, the
profiled indices and the rankers loaded.
"""

from __future__ import annotations

import logging
import time
import uuid

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from connector.endpoint.outcome import Outcome, finish, json_response
from connector.endpoint.state import EndpointState
from connector.endpoint.wire import REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER, RequestRejected, es_error
from connector.events.intake import parse_events

log = logging.getLogger("hybridrank.serve")
SPOOL_RETRY_AFTER_S = "1"  # a full or unwritable spool disk: the app retries (same event ids: stored once)


async def events_route(state: EndpointState, request: Request) -> Response:
    """``POST /_hybridrank/events``: clicks (one object, an array, or NDJSON) -> 202 once on disk."""
    started = time.perf_counter()
    rid = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    outcome = Outcome(route="events", request_id=rid)
    raw = await request.body()
    try:
        events = parse_events(raw, user_id=request.headers.get(USER_HEADER),
                              session_id=request.headers.get(SESSION_HEADER))
        await to_thread.run_sync(state.events.append, events)
    except RequestRejected as exc:
        outcome.outcome, outcome.reason = "rejected", str(exc)
        response = json_response(request, es_error(exc.status, exc.error_type, str(exc)), exc.status)
    except OSError as exc:  # the spool cannot be written: the app should retry, nothing was accepted
        log.exception("cannot write the event spool")
        outcome.outcome, outcome.reason = "error", str(exc)
        response = json_response(request, es_error(503, "spool_write_exception",
                                                   f"cannot write the event spool: {exc}"), 503)
        response.headers["Retry-After"] = SPOOL_RETRY_AFTER_S
    else:
        outcome.outcome = "accepted"
        response = json_response(request, {"accepted": len(events)}, 202)
    finish(response, rid, outcome)
    state.metrics.count(outcome.route, outcome.outcome)
    log.info("request", extra={"request_id": rid, "method": request.method, "path": request.url.path,
                               "status": response.status_code, "route": outcome.route, "outcome": outcome.outcome,
                               "reason": outcome.reason,
                               "took_ms": round((time.perf_counter() - started) * 1000, 2)})
    return response


async def metrics_route(state: EndpointState, _request: Request) -> Response:
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


async def health_route(state: EndpointState, request: Request) -> Response:
    body = {"upstream": state.upstream_url, "profiles": sorted(state.profiles), "rankers": state.holder.describe()}
    return json_response(request, body, 200)
