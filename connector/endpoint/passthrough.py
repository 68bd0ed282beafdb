"""Relay a request to Elasticsearch verbatim: method, raw path, query string, body, headers, status.

Everything the endpoint does not rerank goes here, and so does every search it decided not to (or
could not) rerank. Small bodies are read whole; larger or chunked ones stream through, and the
upstream's answer streams back with its own headers (hop-by-hop ones dropped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from connector.endpoint.outcome import Outcome
from connector.endpoint.state import EndpointState
from connector.endpoint.wire import forwardable_headers

_SMALL_BODY = 1 << 20  # bodies up to this size are read whole; larger ones stream through


async def passthrough(state: EndpointState, request: Request, body: bytes | None, outcome: Outcome) -> Response:
    """Relay the request verbatim (``body`` replaces the app's body when we had to read it)."""
    assert state.upstream is not None
    if outcome.route != "passthrough":
        outcome.outcome = "fallback" if outcome.fallback else "passthrough"
    headers = list(request.headers.items())
    content: bytes | AsyncIterator[bytes] | None
    if body is not None:
        content = body
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    else:
        length = request.headers.get("content-length")
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        if length is not None and int(length or 0) <= _SMALL_BODY:
            content = await request.body() if int(length or 0) else None
        elif length is not None or chunked:
            content = request.stream()
        else:
            content = None
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    upstream_response = await state.upstream.forward(
        request.method, raw_path.decode("latin-1"), request.scope.get("query_string", b""), headers, content)
    if outcome.route == "passthrough":
        outcome.outcome = f"{upstream_response.status_code // 100}xx"
    response = StreamingResponse(upstream_response.aiter_raw(), status_code=upstream_response.status_code,
                                 background=BackgroundTask(upstream_response.aclose))
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in forwardable_headers(upstream_response.headers.multi_items())]
    return response
