"""``GET|POST [/<index>]/_msearch``: rerank the batch's searches that can be, relay the others in place.

Each header/body pair is planned like a single search (``connector.endpoint.dsl``). One upstream
``_msearch`` carries, in order, every item that passes through (as sent, our ``ext`` removed) and
both legs of every reranked item; the responses come back in the app's order. Item ``i``'s impression
carries ``<X-Request-Id>-<i>``. A batch with nothing to rerank, one that is not NDJSON header/body
pairs, or a bug of ours, is relayed whole; so is one whose credentials Elasticsearch refused as a
whole (401/403), so the app gets Elasticsearch's own refusal of its own request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from connector.endpoint import dsl, upstream_bodies
from connector.endpoint.answer import answer, error_reason, legs_msearch, ordered_response, query_vector
from connector.endpoint.assignment import Assignment
from connector.endpoint.leg_scoring import leg_scoring
from connector.endpoint.outcome import Outcome, json_response, stage
from connector.endpoint.passthrough import passthrough
from connector.endpoint.state import EndpointState
from connector.endpoint.upstream import REFUSED, UpstreamError
from connector.endpoint.wire import (
    EXPLAIN_HEADER,
    VARIANT_HEADER,
    RequestRejected,
    es_error,
    join_ndjson,
    media_for_elasticsearch,
    split_ndjson,
    truthy,
)
from features.exact_scoring import NAMED_SCORES_PARAM, ExactScoring
from hybridrank.errors import ClusterUnavailable
from ltr.ranking import HYBRID

log = logging.getLogger("hybridrank.serve")


async def msearch(state: EndpointState, request: Request, url_index: str | None, started: float,
                  outcome: Outcome) -> Response:
    raw = await request.body()
    media = media_for_elasticsearch(request.headers, has_body=bool(raw.strip()), ndjson=True)
    if media is not None:
        outcome.reason = media
        return await passthrough(state, request, raw, outcome)
    try:
        lines = split_ndjson(raw)
    except (ValueError, RecursionError):
        outcome.reason = "invalid NDJSON"
        return await passthrough(state, request, raw, outcome)
    if len(lines) % 2 or not all(isinstance(x, dict) for x in lines):
        outcome.reason = "not header/body pairs"
        return await passthrough(state, request, raw, outcome)
    explain = truthy(request.headers.get(EXPLAIN_HEADER))
    variant = request.headers.get(VARIANT_HEADER)
    items: list[dsl.SearchPlan | dsl.Passthrough | dict[str, Any]] = []
    for header, body in zip(lines[0::2], lines[1::2], strict=True):
        index = header.get("index", url_index)
        if isinstance(index, list) and all(isinstance(i, str) for i in index):
            index = ",".join(index)
        extra = [k for k in header if k != "index"]
        try:
            plan = dsl.plan_search(index, body, {}, state.profiles, explain_header=explain, variant_header=variant)
        except RequestRejected as exc:
            items.append(es_error(exc.status, exc.error_type, str(exc)))
            continue
        except Exception as exc:  # a bug of ours: the whole batch goes to Elasticsearch as sent
            log.exception("msearch planning failed; passing through")
            outcome.fallback = f"internal-error: {type(exc).__name__}"
            return await passthrough(state, request, _without_ext(lines, raw), outcome)
        if isinstance(plan, dsl.SearchPlan):
            if extra and not all(k in dsl.HEADER_PARAMS for k in extra):
                items.append(dsl.Passthrough("unknown msearch header key"))
                continue
            plan = replace(plan, header={**header, "index": index})
        items.append(plan)
    plans = [p for p in items if isinstance(p, dsl.SearchPlan)]
    if not plans:
        outcome.reason = "no reranked search in the batch"
        return await passthrough(state, request, _without_ext(lines, raw), outcome)
    # searches upstream, in order: passthrough items as sent (ext removed), reranked items as two legs
    vectors: dict[int, np.ndarray] = {}
    pairs = list(zip(lines[0::2], lines[1::2], strict=True))
    assignments: dict[int, Assignment] = {}
    for i, item in enumerate(items):
        if isinstance(item, dsl.SearchPlan):
            items[i], assignments[i] = state.experiments.assign(item, f"{outcome.request_id}-{i}", outcome)
    checks = {i: upstream_bodies.render_check(item) for i, item in enumerate(items)
              if isinstance(item, dsl.SearchPlan)}
    scorings: dict[int, ExactScoring | None] = {}
    # ``include_named_queries_score`` is the whole _msearch's: it would reshape a relayed item's matched_queries
    relays = any(isinstance(item, dsl.Passthrough) for item in items)
    try:
        for i, item in enumerate(items):
            if isinstance(item, dsl.SearchPlan) and not item.beyond_window:
                vectors[i] = await query_vector(state, item.query_text, outcome)
                scorings[i] = None if relays else await leg_scoring(state, item, assignments[i], vectors[i])

        def searches() -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
            out: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
            for i, item in enumerate(items):
                if isinstance(item, dsl.SearchPlan) and item.beyond_window:
                    page_check = checks[i]
                    assert page_check is not None  # a page beyond the window always has its check
                    out.append((item.header, page_check))  # Elasticsearch judges the page alone
                elif isinstance(item, dsl.SearchPlan):
                    out.append((item.header, upstream_bodies.lexical_leg(item, scorings[i])))
                    out.append((item.header, upstream_bodies.knn_leg(item, vectors[i], state.profiles[item.index],
                                                                     scorings[i])))
                    check = checks[i]
                    if check is not None:
                        out.append((item.header, check))
                elif isinstance(item, dsl.Passthrough):
                    header, body = pairs[i]
                    out.append((header, dsl.pop_ext(body)[0]))
            return out

        leg_slots: dict[int, str] = {}  # upstream position -> index, for our legs only
        position = 0
        for i, item in enumerate(items):
            if isinstance(item, dsl.SearchPlan) and item.beyond_window:
                position += 1
            elif isinstance(item, dsl.SearchPlan):
                leg_slots[position] = leg_slots[position + 1] = item.index
                position += 2 + (checks[i] is not None)
            elif isinstance(item, dsl.Passthrough):
                position += 1
        headers = list(request.headers.items())
        params = dict(request.query_params)
        if any(s is not None for s in scorings.values()):
            params[NAMED_SCORES_PARAM] = "true"
        with stage(outcome, "retrieve", state.metrics):
            result = await legs_msearch(state, searches, leg_slots, headers, params)
        upstream_items = iter(result["responses"])
        responses: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            if isinstance(item, dsl.SearchPlan) and item.beyond_window:
                checked = next(upstream_items)
                rejection = dsl.window_rejection(item)
                responses.append(checked if "error" in checked
                                 else es_error(rejection.status, rejection.error_type, str(rejection)))
            elif isinstance(item, dsl.SearchPlan):
                lexical, dense = next(upstream_items), next(upstream_items)
                checked = next(upstream_items) if checks[i] is not None else {}
                if "error" in checked:  # Elasticsearch refuses the item's render keys: its answer
                    responses.append(checked)
                elif "error" in lexical:
                    responses.append(lexical)
                elif "error" in dense:  # the app's query alone, in its own order
                    outcome.fallback = f"knn-leg-failed: {error_reason(dense)}"
                    alone = Assignment(assignments[i].request_id)  # not an experiment's answer
                    response = await answer(state, replace(item, variant=HYBRID), lexical, {"hits": {"hits": []}},
                                            vectors[i], headers, outcome, alone)
                    response["status"] = 200
                    responses.append(ordered_response(response))
                else:
                    sub_started = time.perf_counter()
                    response = await answer(state, item, lexical, dense, vectors[i], headers, outcome,
                                            assignments[i], scorings[i])
                    response["took"] = int(lexical.get("took", 0)) + int((time.perf_counter() - sub_started) * 1000)
                    response["status"] = 200
                    responses.append(ordered_response(response))
            elif isinstance(item, dsl.Passthrough):
                responses.append(next(upstream_items))
            else:
                responses.append(item)
    except UpstreamError as exc:
        if exc.status not in REFUSED:
            raise
        outcome.reason = f"credentials refused ({exc.status})"
        return await passthrough(state, request, raw, outcome)
    except (ClusterUnavailable, RequestRejected):
        raise
    except Exception as exc:
        log.exception("msearch rerank failed; passing through")
        outcome.fallback = f"internal-error: {type(exc).__name__}"
        return await passthrough(state, request, _without_ext(lines, raw), outcome)
    outcome.outcome = "fallback" if outcome.fallback else "reranked"
    took = int((time.perf_counter() - started) * 1000)
    return json_response(request, {"took": took, "responses": responses}, 200)


def _without_ext(lines: list[Any], raw: bytes) -> bytes:
    """The batch as sent, or, if a body carries our ``ext.hybridrank`` (Elasticsearch rejects it), the
    batch re-encoded without it."""
    bodies = lines[1::2]
    if not any(isinstance(b, dict) and isinstance(b.get("ext"), dict) and dsl.EXT_KEY in b["ext"] for b in bodies):
        return raw
    return join_ndjson(item if i % 2 == 0 else dsl.pop_ext(item)[0] for i, item in enumerate(lines))
