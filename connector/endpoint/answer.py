"""Answer one planned search from its two legs, in Elasticsearch's own response shape.

The stages every reranked search goes through, whether it came alone (``connector.endpoint.search``)
or in an ``_msearch`` (``connector.endpoint.msearch``): embed the query text (``query_vector``, cached),
fetch both legs in one upstream ``_msearch`` (``legs_msearch``), then ``answer``: merge the legs into the
window, rank it with the search's variant (or interleave an experiment's two; a ranker that cannot
serve gives hybrid order and a fallback reason), render the page as the app asked for it, log the
impression, and build the response from the lexical leg's (``took`` is the caller's).

Every request to Elasticsearch on this path (legs, the features' exact scores, the page, the feature
snapshot of the impression) carries the app's credentials, taken from its headers, or none
(``connector.credentials``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
from anyio import to_thread

from connector.credentials import Credentials
from connector.endpoint import dsl, upstream_bodies
from connector.endpoint.assignment import Assignment, interleave
from connector.endpoint.outcome import Outcome, stage
from connector.endpoint.state import EndpointState
from connector.endpoint.upstream import UpstreamError
from connector.retrieval import hit_ids
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate, merge_legs
from features.exact_scoring import ExactScoring
from ltr.ranking import Ranked

log = logging.getLogger("hybridrank.serve")
Searches = Callable[[], list[tuple[Mapping[str, Any], Mapping[str, Any]]]]  # (header, body) per upstream search


async def query_vector(state: EndpointState, text: str, outcome: Outcome) -> np.ndarray:
    """The query's embedding; recent ones come from the cache without the worker-thread hop."""
    with stage(outcome, "embed", state.metrics):
        vector = state.vectors.get(text)
        if vector is not None:
            state.vectors.move_to_end(text)
            return vector
        vector = await to_thread.run_sync(state.embedder.encode_query, text, limiter=state.embed_limiter)
        if state.vector_cache_size:
            state.vectors[text] = vector
            if len(state.vectors) > state.vector_cache_size:
                state.vectors.popitem(last=False)
    return vector


async def legs_msearch(state: EndpointState, searches: Searches, leg_slots: Mapping[int, str],
                       headers: Sequence[tuple[str, str]], params: Mapping[str, str]) -> dict[str, Any]:
    """One upstream ``_msearch`` of ``searches()``; sent again if a leg (position -> index in
    ``leg_slots``) had hits without ids (an index on stored-field ids: ``connector.retrieval.hit_ids``)."""
    assert state.upstream is not None
    result = await state.upstream.msearch(searches(), app_headers=headers, params=params)
    responses = result.get("responses", [])
    # judged on the answers, not on the index's state: a concurrent search may have marked it meanwhile
    unnamed = [index for position, index in leg_slots.items()
               if position < len(responses) and not hit_ids.all_named(index, [responses[position]])]
    if unnamed:
        result = await state.upstream.msearch(searches(), app_headers=headers, params=params)
    return result


async def answer(state: EndpointState, plan: dsl.SearchPlan, lexical: dict[str, Any], dense: dict[str, Any],
                 vector: np.ndarray, headers: Sequence[tuple[str, str]], outcome: Outcome,
                 assignment: Assignment, scoring: ExactScoring | None = None) -> dict[str, Any]:
    """One reranked search response in Elasticsearch's shape (``took`` set by the caller); ``scoring``:
    the named clauses both legs carried (``connector.endpoint.leg_scoring``)."""
    lex_hits = lexical.get("hits", {}).get("hits", [])
    knn_hits = dense.get("hits", {}).get("hits", [])
    candidates = list(merge_legs(plan.index, {LEXICAL: lex_hits, DENSE: knn_hits}, scoring).values())
    credentials = Credentials.of(headers)  # the app's, for the requests the ranker makes itself
    ranked = await _rerank(state, plan, vector, candidates, outcome, assignment, credentials)
    window = ranked.candidates[: plan.window]
    scores = ranked.scores[: plan.window]
    page = list(range(plan.from_, min(plan.from_ + plan.size, len(window))))
    rendered = await _render(state, plan, [window[i] for i in page], headers, outcome)
    hits: list[dict[str, Any]] = []
    shown: list[int] = []  # window positions of the hits returned
    names = ranked.feature_names or []
    for i in page:
        cand = window[i]
        base = rendered.get(cand.doc_id)
        if base is None:
            continue  # deleted between retrieval and the page fetch
        hit = _with_score(base, _finite(scores[i]))
        if plan.explain:
            row = ranked.features[i] if ranked.features is not None else None
            hit["_hybridrank"] = {
                "ranker": ranked.ranker,
                "model": ranked.model_id,
                "rank": i + 1,
                "leg_scores": cand.leg_scores,
                "leg_ranks": cand.leg_ranks,
                "features": None if row is None else {n: _finite(v) for n, v in zip(names, row, strict=True)},
            }
            if ranked.teams is not None:
                hit["_hybridrank"]["team"] = ranked.teams[i]
        hits.append(hit)
        shown.append(i)
    state.impressions.log(plan, ranked, shown, outcome, assignment, vector, credentials)
    response = {k: v for k, v in lexical.items() if k not in ("hits", "status")}
    response["timed_out"] = bool(lexical.get("timed_out")) or bool(dense.get("timed_out"))
    lex_hits_meta = lexical.get("hits", {})
    hits_block: dict[str, Any] = {}
    if "total" in lex_hits_meta:
        hits_block["total"] = lex_hits_meta["total"]
    hits_block["max_score"] = _finite(max(scores)) if scores else None
    hits_block["hits"] = hits
    response["hits"] = hits_block
    return response


def ordered_response(body: dict[str, Any]) -> dict[str, Any]:
    """The response's keys in Elasticsearch's order: ``took``, ``timed_out``, ``_shards``, ``hits``, then the rest."""
    head = ("took", "timed_out", "_shards", "hits")
    out = {k: body[k] for k in head if k in body}
    out.update({k: v for k, v in body.items() if k not in head})
    return out


def error_reason(response: Mapping[str, Any]) -> str:
    """The most specific reason an upstream error response gives."""
    error = response.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        cause = causes[0].get("reason") if causes and isinstance(causes[0], dict) else None
        return str(cause or error.get("reason") or error.get("type"))
    return str(error)


async def _rerank(state: EndpointState, plan: dsl.SearchPlan, vector: np.ndarray, candidates: list[Candidate],
                  outcome: Outcome, assignment: Assignment, credentials: Credentials) -> Ranked:
    request_time = outcome.request_time
    fallback: str | None
    if assignment.interleave:
        assert assignment.experiment is not None
        variants = assignment.experiment.variants
        # each ranker gets its own copies: fusion rankers write ``fused_score`` on the candidates
        runs = [await _run_ranker(state, plan, v.ranker, vector, [replace(c) for c in candidates], request_time,
                                  credentials) for v in variants]
        ranked = interleave([r for r, _ in runs], variants, seed=assignment.request_id, length=plan.window)
        fallback = "; ".join(f"{v.name}: {f}" for v, (_, f) in zip(variants, runs, strict=True) if f) or None
    else:
        ranked, fallback = await _run_ranker(state, plan, plan.variant, vector, candidates, request_time,
                                             credentials)
    if assignment.label:
        outcome.experiments.append(assignment.label)
    for name, seconds in ranked.timings.items():
        outcome.stages[name] = seconds
        state.metrics.observe(name, seconds)
    outcome.ranker = ranked.ranker
    outcome.outcome = "reranked"
    if fallback:
        ranked.fallback = fallback
        outcome.fallback = fallback
        outcome.outcome = "fallback"
        state.metrics.fallback(fallback)
    return ranked


async def _run_ranker(state: EndpointState, plan: dsl.SearchPlan, variant: str | None, vector: np.ndarray,
                      candidates: list[Candidate], request_time: datetime,
                      credentials: Credentials) -> tuple[Ranked, str | None]:
    """The window ranked by ``variant`` (a registry variant or a ranker spec); hybrid order on failure."""
    holder = state.holder
    if holder.needs_thread(plan.index, variant):
        ranker, fallback = await to_thread.run_sync(holder.get, plan.index, variant)
    else:
        ranker, fallback = holder.get(plan.index, variant)
    ranked: Ranked | None = None
    if ranker is not holder.hybrid:
        try:
            rerank = partial(ranker.rerank, plan.index, plan.query_text, vector, candidates, request_time,
                             credentials=credentials)
            needs_thread = getattr(ranker, "needs_thread", None)
            blocking = ranker.blocking if needs_thread is None else needs_thread(candidates)
            ranked = await to_thread.run_sync(rerank) if blocking else rerank()
        except Exception as exc:
            fallback = f"model-error: {ranker.name}: {type(exc).__name__}: {exc}"
            log.warning("model failed; hybrid order", extra={"index": plan.index, "reason": fallback})
    if ranked is None:
        ranked = holder.hybrid.rerank(plan.index, plan.query_text, vector, candidates, request_time,
                                      credentials=credentials)
    return ranked, fallback


async def _render(state: EndpointState, plan: dsl.SearchPlan, page: Sequence[Candidate],
                  headers: Sequence[tuple[str, str]], outcome: Outcome) -> dict[str, dict[str, Any]]:
    """The page's hits as the app asked for them (one small follow-up search, when needed)."""
    if not page:
        return {}
    if not upstream_bodies.needs_page_fetch(plan):
        return {c.doc_id: {"_index": c.index or plan.index, "_id": c.doc_id, "_score": None} for c in page}
    assert state.upstream is not None
    ids = [c.doc_id for c in page]
    mget = upstream_bodies.page_mget(plan, ids)
    if mget is not None:
        with stage(outcome, "page", state.metrics):
            got = await state.upstream.mget(mget, app_headers=headers)
        return {d["_id"]: {k: d[k] for k in ("_index", "_id", "_source") if k in d}
                for d in got.get("docs", []) if d.get("found")}
    with stage(outcome, "page", state.metrics):
        result = await state.upstream.search(plan.index, upstream_bodies.page_body(plan, ids),
                                             app_headers=headers, header=plan.header)
    if "error" in result:
        raise UpstreamError(int(result.get("status", 500)), result, "page_fetch_failed")
    return {h["_id"]: h for h in result.get("hits", {}).get("hits", [])}


def _with_score(hit: Mapping[str, Any], score: float | None) -> dict[str, Any]:
    """The hit with our score, ``_score`` placed after ``_id`` as Elasticsearch orders hit keys."""
    out: dict[str, Any] = {}
    for key, value in hit.items():
        if key != "_score":
            out[key] = value
        if key == "_id":
            out["_score"] = score
    out.setdefault("_score", score)
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
