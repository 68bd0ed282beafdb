"""``GET|POST /<index>/_search``: rerank the app's search, or let Elasticsearch answer it alone.

A search on an index with a ranking profile whose body ``connector.endpoint.dsl`` can plan is answered
from the hybrid window (``connector.endpoint.answer``). Anything else — no profile, a body that is not
JSON, a request the window cannot honour, a failed leg, a bug of ours — is relayed (without our
``ext.hybridrank`` block, which Elasticsearch rejects), so the app always gets Elasticsearch's answer.
So is a search whose credentials Elasticsearch refused (401/403 to our requests): the app gets
Elasticsearch's own refusal of its own request, worded for it, with its ``WWW-Authenticate``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.endpoint import dsl, upstream_bodies
from connector.endpoint.answer import answer, error_reason, legs_msearch, ordered_response, query_vector
from connector.endpoint.leg_scoring import leg_scoring
from connector.endpoint.outcome import Outcome, json_response, stage
from connector.endpoint.passthrough import passthrough
from connector.endpoint.state import EndpointState
from connector.endpoint.upstream import REFUSED, UpstreamError
from connector.endpoint.wire import (
    EXPLAIN_HEADER,
    VARIANT_HEADER,
    RequestRejected,
    dumps,
    media_for_elasticsearch,
    truthy,
)
from features.exact_scoring import NAMED_SCORES_PARAM
from hybridrank.errors import ClusterUnavailable

log = logging.getLogger("hybridrank.serve")


async def search(state: EndpointState, request: Request, index: str | None, started: float,
                 outcome: Outcome) -> Response:
    outcome.index = index
    if index not in state.profiles:
        outcome.reason = "index without a ranking profile"
        return await passthrough(state, request, None, outcome)
    raw = await request.body()
    media = media_for_elasticsearch(request.headers, has_body=bool(raw.strip()))
    if media is not None:
        outcome.reason = media  # a media type we do not answer in: Elasticsearch judges it
        return await passthrough(state, request, raw, outcome)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        outcome.reason = "invalid JSON"  # Elasticsearch words the parse error itself
        return await passthrough(state, request, raw, outcome)
    try:
        plan = dsl.plan_search(index, body, dict(request.query_params), state.profiles,
                               explain_header=truthy(request.headers.get(EXPLAIN_HEADER)),
                               variant_header=request.headers.get(VARIANT_HEADER))
    except RequestRejected:
        raise
    except Exception as exc:  # a body our reading cannot take (a bug of ours): Elasticsearch answers it
        log.exception("planning failed; passing through", extra={"index": index})
        outcome.fallback = f"internal-error: {type(exc).__name__}"
        return await passthrough(state, request, _clean_body(body, raw), outcome)
    if isinstance(plan, dsl.Passthrough):
        outcome.reason = plan.reason
        return await passthrough(state, request, _clean_body(body, raw), outcome)
    if plan.beyond_window:
        return await _beyond_window(state, request, plan, _clean_body(body, raw), outcome)
    plan, assignment = state.experiments.assign(plan, outcome.request_id, outcome)
    try:
        vector = await query_vector(state, plan.query_text, outcome)
        headers = list(request.headers.items())
        assert state.upstream is not None
        check = upstream_bodies.render_check(plan)
        scoring = await leg_scoring(state, plan, assignment, vector)
        params = plan.url_params if scoring is None else {**plan.url_params, NAMED_SCORES_PARAM: "true"}
        with stage(outcome, "retrieve", state.metrics):
            result = await legs_msearch(
                state,
                lambda: [(plan.header, upstream_bodies.lexical_leg(plan, scoring)),
                         (plan.header, upstream_bodies.knn_leg(plan, vector, state.profiles[index], scoring)),
                         *([(plan.header, check)] if check is not None else [])],
                {0: index, 1: index}, headers, params)
        lexical, dense, *checked = result["responses"]
        if checked and "error" in checked[0]:
            outcome.reason = "Elasticsearch refuses the body's render keys"
            return await passthrough(state, request, _clean_body(body, raw), outcome)
        if "error" in lexical or "error" in dense:
            failed = lexical if "error" in lexical else dense
            outcome.reason = f"{'lexical' if failed is lexical else 'knn'} leg failed"
            if failed is dense:
                outcome.fallback = f"knn-leg-failed: {error_reason(dense)}"
            return await passthrough(state, request, _clean_body(body, raw), outcome)
        response = await answer(state, plan, lexical, dense, vector, headers, outcome, assignment, scoring)
    except UpstreamError as exc:
        if exc.status not in REFUSED:
            raise
        outcome.reason = f"credentials refused ({exc.status})"
        return await passthrough(state, request, _clean_body(body, raw), outcome)
    except (ClusterUnavailable, RequestRejected):
        raise
    except Exception as exc:  # a bug of ours must not fail the app's search: let ES answer alone
        log.exception("rerank failed; passing through", extra={"index": index})
        outcome.fallback = f"internal-error: {type(exc).__name__}"
        return await passthrough(state, request, _clean_body(body, raw), outcome)
    response["took"] = int((time.perf_counter() - started) * 1000)
    return json_response(request, ordered_response(response), 200)


async def _beyond_window(state: EndpointState, request: Request, plan: dsl.SearchPlan, body: bytes,
                         outcome: Outcome) -> Response:
    """A page beyond the candidate window: Elasticsearch's own error if it refuses the page (beyond its
    result window, a bad render key), else ours (``dsl.window_rejection``)."""
    check = upstream_bodies.render_check(plan)
    assert state.upstream is not None and check is not None
    result = await state.upstream.search(plan.index, check, app_headers=list(request.headers.items()),
                                         header=plan.header)
    if "error" in result:
        outcome.reason = "Elasticsearch refuses the page"
        return await passthrough(state, request, body, outcome)
    raise dsl.window_rejection(plan)


def _clean_body(body: Any, raw: bytes) -> bytes:
    """The app's body without our ``ext.hybridrank`` block (Elasticsearch rejects it), else as sent."""
    if isinstance(body, dict):
        cleaned, own = dsl.pop_ext(body)
        if own or (isinstance(body.get("ext"), dict) and dsl.EXT_KEY in body["ext"]):
            return dumps(cleaned)
    return raw
