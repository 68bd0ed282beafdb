"""``hybridrank serve``: an Elasticsearch-compatible endpoint that reranks what it should.

An app changes one URL. Searches on an index with a ranking profile (``settings.indices``) are
answered from the hybrid window (the app's own query as the lexical leg + a kNN leg under the same
filters, one upstream ``_msearch``), reranked by the serving model, in Elasticsearch's own response
shape; everything else is relayed verbatim (method, path, query string, body, headers, status).

The reranker can never fail a search: a model that cannot load or score gives the hybrid order and
the header ``X-Hybridrank-Fallback: <reason>``; a kNN leg that fails lets Elasticsearch answer alone.

Feedback: every reranked search logs an impression (``connector.events.spool``: handed to a queue, made
durable and shipped off the request path); apps post clicks to ``POST /_hybridrank/events``. Each
search's ``X-Request-Id`` is its impression's ``request_id``; item ``i`` (0-based) of an ``_msearch``
gets ``<X-Request-Id>-<i>``.

Experiments (``ltr.experiments.store``, re-read when the file changes): a search on an index with a running
experiment and no explicit variant (header or ``ext``) is ranked by the user's sticky variant (``ab``:
unit = user header, else session header, else request id) or by the team-draft merge of both variants
(``interleave``); the response says which in ``X-Hybridrank-Experiment: <id>/<variant|interleave>``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from connector.client import cluster_url
from connector.endpoint import dsl
from connector.endpoint.assignment import Assignment, Experiments, interleave
from connector.endpoint.impressions import Impressions
from connector.endpoint.metrics import Metrics
from connector.endpoint.outcome import Outcome, finish, json_response, stage
from connector.endpoint.serving import RankerHolder
from connector.endpoint.upstream import Upstream, UpstreamError
from connector.endpoint.wire import (
    EXPLAIN_HEADER,
    REQUEST_ID_HEADER,
    SESSION_HEADER,
    USER_HEADER,
    VARIANT_HEADER,
    RequestRejected,
    dumps,
    es_error,
    forwardable_headers,
    split_ndjson,
    truthy,
)
from connector.events.spool import EventLog, parse_events
from connector.retrieval import hit_ids
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate, merge_legs
from hybridrank.config import Settings
from hybridrank.errors import ClusterUnavailable
from hybridrank.runtime import tune_gc
from ltr.experiments.store import ExperimentStore
from ltr.ranking import HYBRID, Ranked

if TYPE_CHECKING:
    from connector.embedding.embedder import Embedder

log = logging.getLogger("hybridrank.serve")
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
_SMALL_BODY = 1 << 20  # bodies up to this size are read whole; larger ones stream through


class Endpoint:
    """The ASGI app and the state it shares between requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        upstream_url: str | None = None,
        embedder: Embedder | None = None,
        holder: RankerHolder | None = None,
        connect_timeout_s: float = 1.0,
        embed_concurrency: int = 2,
        torch_threads: int | None = None,
        warm_up: bool = True,
        upstream_transport: Any = None,
        event_log: EventLog | None = None,
        experiments: ExperimentStore | None = None,
        experiments_check_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.profiles = dict(settings.indices)
        self.upstream_url = (upstream_url or cluster_url(settings)).rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self._embedder = embedder
        self._holder = holder
        self.metrics = Metrics()
        # Single queries: one intra-op thread each (on 2 shared cores, torch with 2 threads per query is
        # ~8x slower under load than 1), at most ``embed_concurrency`` at a time.
        self.embed_limiter = CapacityLimiter(embed_concurrency)
        self.torch_threads = torch_threads
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # hits skip the worker-thread hop
        self._vector_cache_size = settings.embedding.query_cache_size
        self.warm_up = warm_up
        self.upstream: Upstream | None = None
        self.upstream_transport = upstream_transport  # tests fake Elasticsearch at the transport
        self.events = event_log or EventLog.from_settings(settings, url=self.upstream_url,
                                                          registry=self.metrics.registry)
        self.experiments = Experiments(experiments or ExperimentStore(settings.experiments_file),
                                       lambda: self.holder, check_s=experiments_check_s)
        self.impressions = Impressions(settings, self.profiles, self.events, upstream_url=self.upstream_url)
        self.app = Starlette(
            routes=[
                Route("/_hybridrank/events", self.events_route, methods=["POST"]),
                Route("/_hybridrank/metrics", self.metrics_route, methods=["GET"]),
                Route("/_hybridrank/health", self.health_route, methods=["GET"]),
                Route("/", self.dispatch, methods=METHODS),
                Route("/{path:path}", self.dispatch, methods=METHODS),
            ],
            lifespan=self.lifespan,
        )

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from connector.embedding.embedder import embedder_from_settings

            self._embedder = embedder_from_settings(self.settings)
        return self._embedder

    @property
    def holder(self) -> RankerHolder:
        if self._holder is None:
            from connector.client import make_client
            from connector.endpoint.serving import learned_holder

            self._holder = learned_holder(self.settings, lambda: make_client(self.settings, url=self.upstream_url))
        return self._holder

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        tune_gc()  # the endpoint owns its process: every search parses thousands of short-lived objects
        self.upstream = Upstream(self.upstream_url, connect_timeout_s=self.connect_timeout_s,
                                 read_timeout_s=self.settings.cluster.request_timeout_s,
                                 auth_headers=_auth_headers(self.settings), transport=self.upstream_transport)
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        if self.warm_up and self.profiles:
            _ = self.holder
            await to_thread.run_sync(self.embedder.encode_query, "warm up")
            await to_thread.run_sync(self._load_serving_rankers)
        await self.events.start()
        log.info("endpoint ready", extra={"upstream": self.upstream_url, "profiles": sorted(self.profiles),
                                          "rankers": self.holder.describe(), "spool": str(self.events.spool_dir),
                                          "query_runtime": self.embedder.active_query_runtime
                                          if self.warm_up and self.profiles else "not loaded"})
        try:
            yield
        finally:
            try:
                await self.impressions.drain()  # snapshots still computing: bounded wait, then log without them
                await self.events.aclose()  # queued impressions reach the spool before we exit
                self.impressions.close()
            finally:
                await self.upstream.aclose()

    # -- routes -------------------------------------------------------------------------------------
    async def metrics_route(self, _request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def events_route(self, request: Request) -> Response:
        """``POST /_hybridrank/events``: clicks (one object, an array, or NDJSON) -> 202 once on disk."""
        started = time.perf_counter()
        rid = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        outcome = Outcome(route="events", request_id=rid)
        raw = await request.body()
        try:
            events = parse_events(raw, user_id=request.headers.get(USER_HEADER),
                                  session_id=request.headers.get(SESSION_HEADER))
            await to_thread.run_sync(self.events.append, events)
        except RequestRejected as exc:
            outcome.outcome, outcome.reason = "rejected", str(exc)
            response = json_response(request, es_error(exc.status, exc.error_type, str(exc)), exc.status)
        except OSError as exc:  # the spool cannot be written: the app should retry, nothing was accepted
            log.exception("cannot write the event spool")
            outcome.outcome, outcome.reason = "error", str(exc)
            response = json_response(request, es_error(503, "spool_write_exception",
                                                    f"cannot write the event spool: {exc}"), 503)
        else:
            outcome.outcome = "accepted"
            response = json_response(request, {"accepted": len(events)}, 202)
        finish(response, rid, outcome)
        self.metrics.count(outcome.route, outcome.outcome)
        log.info("request", extra={"request_id": rid, "method": request.method, "path": request.url.path,
                                   "status": response.status_code, "route": outcome.route, "outcome": outcome.outcome,
                                   "reason": outcome.reason,
                                   "took_ms": round((time.perf_counter() - started) * 1000, 2)})
        return response

    async def health_route(self, request: Request) -> Response:
        body = {"upstream": self.upstream_url, "profiles": sorted(self.profiles), "rankers": self.holder.describe()}
        return json_response(request, body, 200)

    async def dispatch(self, request: Request) -> Response:
        started = time.perf_counter()
        rid = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        parts = [p for p in request.url.path.split("/") if p]
        is_search = request.method in ("GET", "POST")
        outcome = Outcome(route="passthrough", request_id=rid, user_id=request.headers.get(USER_HEADER),
                           session_id=request.headers.get(SESSION_HEADER))
        try:
            if is_search and parts and parts[-1] == "_search" and len(parts) <= 2 and not _underscore(parts[:-1]):
                outcome.route = "search"
                response = await self.search(request, parts[0] if len(parts) == 2 else None, started, outcome)
            elif is_search and parts and parts[-1] == "_msearch" and len(parts) <= 2 and not _underscore(parts[:-1]):
                outcome.route = "msearch"
                response = await self.msearch(request, parts[0] if len(parts) == 2 else None, started, outcome)
            else:
                response = await self.passthrough(request, None, outcome)
        except ClusterUnavailable as exc:
            outcome.outcome = "unavailable"
            response = json_response(request, es_error(503, "connect_transport_exception", str(exc)), 503)
        except RequestRejected as exc:
            outcome.outcome = "rejected"
            response = json_response(request, es_error(exc.status, exc.error_type, str(exc)), exc.status)
        except UpstreamError as exc:
            outcome.outcome = "upstream_error"
            response = json_response(request, exc.body, exc.status)
        total = time.perf_counter() - started
        finish(response, rid, outcome)
        self.metrics.count(outcome.route, outcome.outcome)
        if outcome.route != "passthrough":
            self.metrics.observe("total", total)
        log.info("request", extra={
            "request_id": rid, "method": request.method, "path": request.url.path, "status": response.status_code,
            "route": outcome.route, "index": outcome.index, "outcome": outcome.outcome, "reason": outcome.reason,
            "ranker": outcome.ranker, "fallback": outcome.fallback, "took_ms": round(total * 1000, 2),
            "stages_ms": {k: round(v * 1000, 2) for k, v in outcome.stages.items()},
        })
        return response

    # -- _search --------------------------------------------------------------------------------------
    async def search(self, request: Request, index: str | None, started: float, outcome: Outcome) -> Response:
        outcome.index = index
        if index not in self.profiles:
            outcome.reason = "index without a ranking profile"
            return await self.passthrough(request, None, outcome)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            outcome.reason = "invalid JSON"  # Elasticsearch words the parse error itself
            return await self.passthrough(request, raw, outcome)
        plan = dsl.plan_search(index, body, _params(request), self.profiles,
                               explain_header=truthy(request.headers.get(EXPLAIN_HEADER)),
                               variant_header=request.headers.get(VARIANT_HEADER))
        if isinstance(plan, dsl.Passthrough):
            outcome.reason = plan.reason
            return await self.passthrough(request, _clean_body(body, raw), outcome)
        plan, assignment = self.experiments.assign(plan, outcome.request_id, outcome)
        try:
            vector = await self._embed(plan.query_text, outcome)
            headers = list(request.headers.items())
            assert self.upstream is not None
            with stage(outcome, "retrieve", self.metrics):
                result = await self._legs_msearch(
                    lambda: [(plan.header, dsl.lexical_leg(plan)),
                             (plan.header, dsl.knn_leg(plan, vector, self.profiles[index]))],
                    {0: index, 1: index}, headers, plan.url_params)
            lexical, dense = result["responses"]
            if "error" in lexical or "error" in dense:
                failed = lexical if "error" in lexical else dense
                outcome.reason = f"{'lexical' if failed is lexical else 'knn'} leg failed"
                if failed is dense:
                    outcome.fallback = f"knn-leg-failed: {_error_reason(dense)}"
                return await self.passthrough(request, _clean_body(body, raw), outcome)
            answer = await self._answer(plan, lexical, dense, vector, headers, outcome, assignment)
        except (ClusterUnavailable, RequestRejected, UpstreamError):
            raise
        except Exception as exc:  # a bug of ours must not fail the app's search: let ES answer alone
            log.exception("rerank failed; passing through", extra={"index": index})
            outcome.fallback = f"internal-error: {type(exc).__name__}"
            return await self.passthrough(request, _clean_body(body, raw), outcome)
        answer["took"] = int((time.perf_counter() - started) * 1000)
        return json_response(request, _ordered_response(answer), 200)

    async def _legs_msearch(self, searches: Callable[[], list[tuple[Mapping[str, Any], Mapping[str, Any]]]],
                            leg_slots: Mapping[int, str], headers: Sequence[tuple[str, str]],
                            params: Mapping[str, str]) -> dict[str, Any]:
        """One upstream ``_msearch`` of ``searches()``; sent again if a leg (position -> index in
        ``leg_slots``) had hits without ids (an index on stored-field ids: ``connector.retrieval.hit_ids``)."""
        assert self.upstream is not None
        result = await self.upstream.msearch(searches(), app_headers=headers, params=params)
        responses = result.get("responses", [])
        # judged on the answers, not on the index's state: a concurrent search may have marked it meanwhile
        unnamed = [index for position, index in leg_slots.items()
                   if position < len(responses) and not hit_ids.all_named(index, [responses[position]])]
        if unnamed:
            result = await self.upstream.msearch(searches(), app_headers=headers, params=params)
        return result

    async def _embed(self, text: str, outcome: Outcome) -> np.ndarray:
        with stage(outcome, "embed", self.metrics):
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
            vector = await to_thread.run_sync(self.embedder.encode_query, text, limiter=self.embed_limiter)
            if self._vector_cache_size:
                self._vectors[text] = vector
                if len(self._vectors) > self._vector_cache_size:
                    self._vectors.popitem(last=False)
        return vector

    async def _answer(self, plan: dsl.SearchPlan, lexical: dict[str, Any], dense: dict[str, Any],
                      vector: np.ndarray, headers: Sequence[tuple[str, str]], outcome: Outcome,
                      assignment: Assignment) -> dict[str, Any]:
        """One reranked search response in Elasticsearch's shape (``took`` set by the caller)."""
        lex_hits = lexical.get("hits", {}).get("hits", [])
        knn_hits = dense.get("hits", {}).get("hits", [])
        candidates = list(merge_legs(plan.index, {LEXICAL: lex_hits, DENSE: knn_hits}).values())
        ranked = await self._rerank(plan, vector, candidates, outcome, assignment)
        window = ranked.candidates[: plan.window]
        scores = ranked.scores[: plan.window]
        page = list(range(plan.from_, min(plan.from_ + plan.size, len(window))))
        rendered = await self._render(plan, [window[i] for i in page], headers, outcome)
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
        self.impressions.log(plan, ranked, shown, outcome, assignment, vector)
        answer = {k: v for k, v in lexical.items() if k not in ("hits", "status")}
        answer["timed_out"] = bool(lexical.get("timed_out")) or bool(dense.get("timed_out"))
        lex_hits_meta = lexical.get("hits", {})
        hits_block: dict[str, Any] = {}
        if "total" in lex_hits_meta:
            hits_block["total"] = lex_hits_meta["total"]
        hits_block["max_score"] = _finite(max(scores)) if scores else None
        hits_block["hits"] = hits
        answer["hits"] = hits_block
        return answer

    @property
    def post_response_work(self) -> int:
        """Feature snapshots still being computed after their responses (their impressions are not queued yet)."""
        return self.impressions.pending

    async def _rerank(self, plan: dsl.SearchPlan, vector: np.ndarray, candidates: list[Candidate],
                      outcome: Outcome, assignment: Assignment) -> Ranked:
        request_time = outcome.request_time
        fallback: str | None
        if assignment.interleave:
            assert assignment.experiment is not None
            team_a, team_b = assignment.experiment.variants
            # each ranker gets its own copies: fusion rankers write ``fused_score`` on the candidates
            ranked_a, fallback_a = await self._run_ranker(plan, team_a.ranker, vector,
                                                          [replace(c) for c in candidates], request_time)
            ranked_b, fallback_b = await self._run_ranker(plan, team_b.ranker, vector,
                                                          [replace(c) for c in candidates], request_time)
            ranked = interleave(ranked_a, ranked_b, team_a, team_b, seed=assignment.request_id, length=plan.window)
            fallback = "; ".join(f"{v.name}: {f}" for v, f in ((team_a, fallback_a), (team_b, fallback_b)) if f) or None
        else:
            ranked, fallback = await self._run_ranker(plan, plan.variant, vector, candidates, request_time)
        if assignment.label:
            outcome.experiments.append(assignment.label)
        for name, seconds in ranked.timings.items():
            outcome.stages[name] = seconds
            self.metrics.observe(name, seconds)
        outcome.ranker = ranked.ranker
        outcome.outcome = "reranked"
        if fallback:
            ranked.fallback = fallback
            outcome.fallback = fallback
            outcome.outcome = "fallback"
            self.metrics.fallback(fallback)
        return ranked

    async def _run_ranker(self, plan: dsl.SearchPlan, variant: str | None, vector: np.ndarray,
                          candidates: list[Candidate], request_time: datetime) -> tuple[Ranked, str | None]:
        """The window ranked by ``variant`` (a registry variant or a ranker spec); hybrid order on failure."""
        holder = self.holder
        if holder.needs_thread(plan.index, variant):
            ranker, fallback = await to_thread.run_sync(holder.get, plan.index, variant)
        else:
            ranker, fallback = holder.get(plan.index, variant)
        ranked: Ranked | None = None
        if ranker is not holder.hybrid:
            try:
                if ranker.blocking:
                    ranked = await to_thread.run_sync(ranker.rerank, plan.index, plan.query_text, vector,
                                                      candidates, request_time)
                else:
                    ranked = ranker.rerank(plan.index, plan.query_text, vector, candidates, request_time)
            except Exception as exc:
                fallback = f"model-error: {ranker.name}: {type(exc).__name__}: {exc}"
                log.warning("model failed; hybrid order", extra={"index": plan.index, "reason": fallback})
        if ranked is None:
            ranked = holder.hybrid.rerank(plan.index, plan.query_text, vector, candidates, request_time)
        return ranked, fallback

    def _load_serving_rankers(self) -> None:
        """Load what will serve each profiled index (its default model, the running experiment's
        variants) before the endpoint says it is ready: loading on the first search made the app's
        first requests wait ~3 s each."""
        self.experiments.refresh()
        for index in self.profiles:
            self.holder.get(index, None)
        self.experiments.wait_until_live()

    async def _render(self, plan: dsl.SearchPlan, page: Sequence[Candidate],
                      headers: Sequence[tuple[str, str]], outcome: Outcome) -> dict[str, dict[str, Any]]:
        """The page's hits as the app asked for them (one small follow-up search, when needed)."""
        if not page:
            return {}
        if not dsl.needs_page_fetch(plan):
            return {c.doc_id: {"_index": c.index or plan.index, "_id": c.doc_id, "_score": None} for c in page}
        assert self.upstream is not None
        ids = [c.doc_id for c in page]
        mget = dsl.page_mget(plan, ids)
        if mget is not None:
            with stage(outcome, "page", self.metrics):
                got = await self.upstream.mget(mget, app_headers=headers)
            return {d["_id"]: {k: d[k] for k in ("_index", "_id", "_source") if k in d}
                    for d in got.get("docs", []) if d.get("found")}
        with stage(outcome, "page", self.metrics):
            result = await self.upstream.search(plan.index, dsl.page_body(plan, ids),
                                                app_headers=headers, header=plan.header)
        if "error" in result:
            raise UpstreamError(int(result.get("status", 500)), result, "page_fetch_failed")
        return {h["_id"]: h for h in result.get("hits", {}).get("hits", [])}

    # -- _msearch -------------------------------------------------------------------------------------
    async def msearch(self, request: Request, url_index: str | None, started: float, outcome: Outcome) -> Response:
        raw = await request.body()
        try:
            lines = split_ndjson(raw)
        except ValueError:
            outcome.reason = "invalid NDJSON"
            return await self.passthrough(request, raw, outcome)
        if len(lines) % 2 or not all(isinstance(x, dict) for x in lines):
            outcome.reason = "not header/body pairs"
            return await self.passthrough(request, raw, outcome)
        explain = truthy(request.headers.get(EXPLAIN_HEADER))
        variant = request.headers.get(VARIANT_HEADER)
        items: list[dsl.SearchPlan | dsl.Passthrough | dict[str, Any]] = []
        for header, body in zip(lines[0::2], lines[1::2], strict=True):
            index = header.get("index", url_index)
            index = ",".join(index) if isinstance(index, list) else index
            extra = [k for k in header if k != "index"]
            try:
                plan = dsl.plan_search(index, body, {}, self.profiles, explain_header=explain, variant_header=variant)
            except RequestRejected as exc:
                items.append(es_error(exc.status, exc.error_type, str(exc)))
                continue
            if isinstance(plan, dsl.SearchPlan):
                if extra and not all(k in dsl.HEADER_PARAMS for k in extra):
                    items.append(dsl.Passthrough("unknown msearch header key"))
                    continue
                plan = replace(plan, header={**header, "index": index})
            items.append(plan)
        plans = [p for p in items if isinstance(p, dsl.SearchPlan)]
        if not plans:
            outcome.reason = "no reranked search in the batch"
            return await self.passthrough(request, raw, outcome)
        # searches upstream, in order: passthrough items as sent (ext removed), reranked items as two legs
        vectors: dict[int, np.ndarray] = {}
        pairs = list(zip(lines[0::2], lines[1::2], strict=True))
        assignments: dict[int, Assignment] = {}
        for i, item in enumerate(items):
            if isinstance(item, dsl.SearchPlan):
                items[i], assignments[i] = self.experiments.assign(item, f"{outcome.request_id}-{i}", outcome)
        try:
            for i, item in enumerate(items):
                if isinstance(item, dsl.SearchPlan):
                    vectors[i] = await self._embed(item.query_text, outcome)

            def searches() -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
                out: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
                for i, item in enumerate(items):
                    if isinstance(item, dsl.SearchPlan):
                        out.append((item.header, dsl.lexical_leg(item)))
                        out.append((item.header, dsl.knn_leg(item, vectors[i], self.profiles[item.index])))
                    elif isinstance(item, dsl.Passthrough):
                        header, body = pairs[i]
                        out.append((header, dsl.pop_ext(body)[0]))
                return out

            leg_slots: dict[int, str] = {}  # upstream position -> index, for our legs only
            position = 0
            for item in items:
                if isinstance(item, dsl.SearchPlan):
                    leg_slots[position] = leg_slots[position + 1] = item.index
                    position += 2
                elif isinstance(item, dsl.Passthrough):
                    position += 1
            headers = list(request.headers.items())
            with stage(outcome, "retrieve", self.metrics):
                result = await self._legs_msearch(searches, leg_slots, headers, _params(request))
            upstream_items = iter(result["responses"])
            responses: list[dict[str, Any]] = []
            for i, item in enumerate(items):
                if isinstance(item, dsl.SearchPlan):
                    lexical, dense = next(upstream_items), next(upstream_items)
                    if "error" in lexical:
                        responses.append(lexical)
                    elif "error" in dense:  # the app's query alone, in its own order
                        outcome.fallback = f"knn-leg-failed: {_error_reason(dense)}"
                        alone = Assignment(assignments[i].request_id)  # not an experiment's answer
                        answer = await self._answer(replace(item, variant=HYBRID), lexical, {"hits": {"hits": []}},
                                                    vectors[i], headers, outcome, alone)
                        answer["status"] = 200
                        responses.append(_ordered_response(answer))
                    else:
                        sub_started = time.perf_counter()
                        answer = await self._answer(item, lexical, dense, vectors[i], headers, outcome, assignments[i])
                        answer["took"] = int(lexical.get("took", 0)) + int((time.perf_counter() - sub_started) * 1000)
                        answer["status"] = 200
                        responses.append(_ordered_response(answer))
                elif isinstance(item, dsl.Passthrough):
                    responses.append(next(upstream_items))
                else:
                    responses.append(item)
        except (ClusterUnavailable, RequestRejected, UpstreamError):
            raise
        except Exception as exc:
            log.exception("msearch rerank failed; passing through")
            outcome.fallback = f"internal-error: {type(exc).__name__}"
            return await self.passthrough(request, raw, outcome)
        outcome.outcome = "fallback" if outcome.fallback else "reranked"
        took = int((time.perf_counter() - started) * 1000)
        return json_response(request, {"took": took, "responses": responses}, 200)

    # -- passthrough ----------------------------------------------------------------------------------
    async def passthrough(self, request: Request, body: bytes | None, outcome: Outcome) -> Response:
        """Relay the request verbatim (``body`` replaces the app's body when we had to read it)."""
        assert self.upstream is not None
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
        upstream_response = await self.upstream.forward(
            request.method, raw_path.decode("latin-1"), request.scope.get("query_string", b""), headers, content)
        if outcome.route == "passthrough":
            outcome.outcome = f"{upstream_response.status_code // 100}xx"
        response = StreamingResponse(upstream_response.aiter_raw(), status_code=upstream_response.status_code,
                                     background=BackgroundTask(upstream_response.aclose))
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in forwardable_headers(upstream_response.headers.multi_items())]
        return response

def create_app(settings: Settings, **options: Any) -> Starlette:
    """The ASGI app (see ``Endpoint`` for the options)."""
    return Endpoint(settings, **options).app


# -- module helpers ---------------------------------------------------------------------------------
def _underscore(parts: Sequence[str]) -> bool:
    return any(p.startswith("_") for p in parts)


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _clean_body(body: Any, raw: bytes) -> bytes:
    """The app's body without our ``ext.hybridrank`` block (Elasticsearch rejects it), else as sent."""
    if isinstance(body, dict):
        cleaned, own = dsl.pop_ext(body)
        if own or (isinstance(body.get("ext"), dict) and dsl.EXT_KEY in body["ext"]):
            return dumps(cleaned)
    return raw


def _error_reason(response: Mapping[str, Any]) -> str:
    error = response.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        cause = causes[0].get("reason") if causes and isinstance(causes[0], dict) else None
        return str(cause or error.get("reason") or error.get("type"))
    return str(error)


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


def _ordered_response(answer: dict[str, Any]) -> dict[str, Any]:
    head = ("took", "timed_out", "_shards", "hits")
    out = {k: answer[k] for k in head if k in answer}
    out.update({k: v for k, v in answer.items() if k not in head})
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _auth_headers(settings: Settings) -> dict[str, str]:
    cluster = settings.cluster
    if cluster.api_key:
        return {"authorization": f"ApiKey {cluster.api_key}"}
    if cluster.username:
        token = base64.b64encode(f"{cluster.username}:{cluster.password}".encode()).decode()
        return {"authorization": f"Basic {token}"}
    return {}
