"""``hybridrank serve``: an Elasticsearch-compatible endpoint that reranks what it should.

An app changes one URL. Searches on an index with a ranking profile (``settings.indices``) are
answered from the hybrid window (the app's own query as the lexical leg + a kNN leg under the same
filters, one upstream ``_msearch``), reranked by the serving model, in Elasticsearch's own response
shape; everything else is relayed verbatim (method, path, query string, body, headers, status).

The reranker can never fail a search: a model that cannot load or score gives the hybrid order and
the header ``X-Hybridrank-Fallback: <reason>``; a kNN leg that fails lets Elasticsearch answer alone.

Feedback: every reranked search logs an impression (``connector.endpoint.impressions``, on
``connector.events.spool``: handed to a queue, made durable and shipped off the request path); apps post
clicks to ``POST /_hybridrank/events``. Each search's ``X-Request-Id`` is its impression's ``request_id``;
item ``i`` (0-based) of an ``_msearch`` gets ``<X-Request-Id>-<i>``.

Experiments (``ltr.experiments.store``, re-read when the file changes: ``connector.endpoint.assignment``):
a search on an index with a running experiment and no explicit variant (header or ``ext``) is ranked by
the user's sticky variant (``ab``: unit = user header, else session header, else request id) or by the
team-draft merge of both variants (``interleave``); the response says which in
``X-Hybridrank-Experiment: <id>/<variant|interleave>``.

This module is the app: ``Endpoint`` routes ``[/<index>]/_search`` to ``connector.endpoint.search``,
``[/<index>]/_msearch`` to ``connector.endpoint.msearch``, ``/_hybridrank/*`` to
``connector.endpoint.own_routes`` and everything else to ``connector.endpoint.passthrough``, maps typed
errors to Elasticsearch-shaped ones, logs one line per request, and runs the lifespan (upstream
client, warm-up, event log).
"""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from functools import cached_property, partial
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.endpoint.admission import Admission
from connector.endpoint.msearch import msearch
from connector.endpoint.outcome import Outcome, finish, json_response
from connector.endpoint.own_routes import events_route, health_route, metrics_route
from connector.endpoint.passthrough import passthrough
from connector.endpoint.search import search
from connector.endpoint.state import EndpointState
from connector.endpoint.upstream import Upstream, UpstreamError
from connector.endpoint.wire import REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER, RequestRejected, es_error
from hybridrank.config import Settings
from hybridrank.errors import ClusterUnavailable
from hybridrank.runtime import tune_gc

log = logging.getLogger("hybridrank.serve")
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]


class Endpoint(EndpointState):
    """The ASGI app (``app``) over the state its requests share (``connector.endpoint.state``)."""

    @cached_property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_hybridrank/events", partial(events_route, self), methods=["POST"]),
                Route("/_hybridrank/metrics", partial(metrics_route, self), methods=["GET"]),
                Route("/_hybridrank/health", partial(health_route, self), methods=["GET"]),
                Route("/", self.dispatch, methods=METHODS),
                Route("/{path:path}", self.dispatch, methods=METHODS),
            ],
            lifespan=self.lifespan,
            middleware=[Middleware(Admission, limits=self.settings.admission,  # 429 beyond a bounded queue
                                   on_shed=partial(self.metrics.count, "admission"))],
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        tune_gc()  # the endpoint owns its process: every search parses thousands of short-lived objects
        self.upstream = Upstream(self.upstream_url, connect_timeout_s=self.connect_timeout_s,
                                 read_timeout_s=self.settings.cluster.request_timeout_s,
                                 transport=self.upstream_transport)
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        if self.warm_up and self.profiles:
            _ = self.holder
            await to_thread.run_sync(self.embedder.encode_query, "warm up")
            await to_thread.run_sync(self._load_serving_rankers)
        await self.events.start()
        log.info("endpoint ready", extra={"upstream": self.upstream.base_url, "profiles": sorted(self.profiles),
                                          "rankers": self.holder.describe(), "spool": str(self.events.spool_dir),
                                          "query_runtime": self.embedder.active_query_runtime
                                          if self.warm_up and self.profiles else "not loaded"})
        try:
            yield
        finally:
            try:
                await self.impressions.drain()  # snapshots still computing: bounded wait, then log without them
                await self.events.aclose()  # queued impressions reach the spool before we exit
                self.close_clients()
            finally:
                await self.upstream.aclose()

    def _load_serving_rankers(self) -> None:
        """Load what will serve each profiled index (its default model, the running experiment's
        variants) before the endpoint says it is ready: loading on the first search made the app's
        first requests wait ~3 s each."""
        self.experiments.refresh()
        for index in self.profiles:
            self.holder.get(index, None)
        self.experiments.wait_until_live()

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
                response = await search(self, request, parts[0] if len(parts) == 2 else None, started, outcome)
            elif is_search and parts and parts[-1] == "_msearch" and len(parts) <= 2 and not _underscore(parts[:-1]):
                outcome.route = "msearch"
                response = await msearch(self, request, parts[0] if len(parts) == 2 else None, started, outcome)
            else:
                response = await passthrough(self, request, None, outcome)
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
        if log.isEnabledFor(logging.INFO):  # the line's fields cost CPU on every search even when not logged
            log.info("request", extra={
                "request_id": rid, "method": request.method, "path": request.url.path,
                "status": response.status_code, "route": outcome.route, "index": outcome.index,
                "outcome": outcome.outcome, "reason": outcome.reason, "ranker": outcome.ranker,
                "fallback": outcome.fallback, "took_ms": round(total * 1000, 2),
                "stages_ms": {k: round(v * 1000, 2) for k, v in outcome.stages.items()},
            })
        return response


def create_app(settings: Settings, **options: Any) -> Starlette:
    """The ASGI app (see ``EndpointState`` for the options)."""
    return Endpoint(settings, **options).app


def _underscore(parts: Sequence[str]) -> bool:
    return any(p.startswith("_") for p in parts)

