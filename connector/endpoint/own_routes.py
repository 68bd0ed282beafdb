"""The endpoint's own routes, under ``/_hybridrank/``: events in, metrics and health out.

``POST /_hybridrank/events`` takes the apps' clicks (one object, an array, or NDJSON;
``connector.events.intake.parse_events`` checks them) and answers 202 once they are fsynced to disk in
the spool, 400 for an invalid event, 413 for a body over ``feedback.max_post_bytes``, 503 with
``Retry-After`` if the spool cannot be written (disk full, unwritable: nothing of the request is
acknowledged, and nothing half-written stays behind; retry). ``GET /_hybridrank/metrics`` is Prometheus
text; ``GET /_hybridrank/health`` names the upstream, the profiled indices and the rankers loaded.
With security on, events and metrics answer only a caller Elasticsearch authenticates and who holds
the route's privilege (``connector.endpoint.auth``: 401/403 otherwise); each click carries that
caller as its ``principal``. Health stays open.
"""

from __future__ import annotations

import logging
import time
import uuid

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from connector.credentials import Credentials, without_userinfo
from connector.endpoint.auth import AuthRejected, Principal
from connector.endpoint.outcome import Outcome, finish, json_response
from connector.endpoint.state import EndpointState
from connector.endpoint.wire import REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER, RequestRejected, es_error
from connector.events.intake import parse_events
from hybridrank.errors import ClusterUnavailable

log = logging.getLogger("hybridrank.serve")
SPOOL_RETRY_AFTER_S = "1"  # a full or unwritable spool disk: the app retries (same event ids: stored once)


async def events_route(state: EndpointState, request: Request) -> Response:
    """``POST /_hybridrank/events``: clicks (one object, an array, or NDJSON) -> 202 once on disk."""
    started = time.perf_counter()
    rid = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    outcome = Outcome(route="events", request_id=rid)
    feedback = state.settings.feedback
    try:
        principal = await _caller(state, request, "events")
        raw = await _body_within(request, feedback.max_post_bytes)
        events = parse_events(raw, user_id=request.headers.get(USER_HEADER),
                              session_id=request.headers.get(SESSION_HEADER),
                              principal=principal.name if principal else None, max_events=feedback.max_post_events)
        await to_thread.run_sync(state.events.append, events)
    except AuthRejected as exc:
        outcome.outcome, outcome.reason = "unauthorized", str(exc)
        response = _rejected(request, exc)
    except ClusterUnavailable as exc:  # cannot ask who the caller is: the app retries
        outcome.outcome, outcome.reason = "unavailable", str(exc)
        response = json_response(request, es_error(503, "connect_transport_exception", str(exc)), 503)
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


async def metrics_route(state: EndpointState, request: Request) -> Response:
    try:
        await _caller(state, request, "metrics")
    except AuthRejected as exc:
        return _rejected(request, exc)
    except ClusterUnavailable as exc:
        return json_response(request, es_error(503, "connect_transport_exception", str(exc)), 503)
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


async def health_route(state: EndpointState, request: Request) -> Response:
    # open to anyone: the upstream is named without any user:password@ it was configured with
    body = {"upstream": without_userinfo(state.upstream_url), "profiles": sorted(state.profiles),
            "rankers": state.holder.describe()}
    return json_response(request, body, 200)


async def _caller(state: EndpointState, request: Request, route: str) -> Principal | None:
    """Who calls an own route (None: security off); ``AuthRejected`` if they may not."""
    assert state.upstream is not None
    return await state.own_routes_auth.authorize(state.upstream, Credentials.of(request.headers.items()), route,
                                                 request.url.path)


def _rejected(request: Request, exc: AuthRejected) -> Response:
    response = json_response(request, exc.body(), exc.status)
    for challenge in exc.challenge:
        response.headers.append("WWW-Authenticate", challenge)
    return response


async def _body_within(request: Request, limit: int) -> bytes:
    """The request body, refused with a 413 (before reading it all) once it exceeds ``limit`` bytes."""
    def too_large(size: str) -> RequestRejected:
        return RequestRejected(f"events body of {size} bytes exceeds the limit of {limit} bytes "
                               "(feedback.max_post_bytes); post the events in parts",
                               status=413, error_type="content_too_long_exception")

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"more than {limit}")
        chunks.append(chunk)
    return b"".join(chunks)
