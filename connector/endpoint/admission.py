"""Bounded admission: the endpoint sheds load the way Elasticsearch does instead of queueing without end.

``Admission`` is ASGI middleware around the whole app. At most ``max_in_flight`` requests are at work;
up to ``max_queued`` more wait for a slot, first come first served. A request that finds the queue full,
or waits ``queue_timeout_s`` without a slot, is answered at once with Elasticsearch's own overload answer
— 429 ``es_rejected_execution_exception`` with ``Retry-After`` — which the official clients already
know to retry with back-off. So under 200 clients on 2 cores, latency and memory stay bounded by the
queue, not by the number of clients. A request holds its slot until its response is fully sent (a
streamed pass-through included). ``/_hybridrank/health`` and ``/_hybridrank/metrics`` are never shed,
so an overloaded endpoint can still be watched. Limits: ``hybridrank.config.AdmissionConfig``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from connector.endpoint.wire import PRODUCT_HEADER, PRODUCT_VALUE, dumps, es_error, json_media_type
from hybridrank.config import AdmissionConfig

log = logging.getLogger("hybridrank.serve")
EXEMPT_PATHS = frozenset({"/_hybridrank/health", "/_hybridrank/metrics"})
REJECTED = "es_rejected_execution_exception"


class Admission:
    """ASGI middleware: a bounded number of requests at work, a bounded FIFO queue, 429 beyond."""

    def __init__(self, app: ASGIApp, *, limits: AdmissionConfig, on_shed: Any = None) -> None:
        self.app = app
        self.limits = limits
        self.on_shed = on_shed  # called with the reason ("queue_full" | "queue_timeout"), for metrics
        self.in_flight = 0
        self.shed = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        reason = await self._acquire()
        if reason is not None:
            await self._reject(scope, send, reason)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _acquire(self) -> str | None:
        """None once the request holds a slot; else why it is shed."""
        if self.in_flight < self.limits.max_in_flight and not self._waiters:
            self.in_flight += 1
            return None
        if len(self._waiters) >= self.limits.max_queued:
            return "queue_full"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.limits.queue_timeout_s)
        except TimeoutError:
            if waiter.done():  # the slot was handed over just as the wait ended: keep it
                return None
            waiter.cancel()
            self._waiters.remove(waiter)
            return "queue_timeout"
        except BaseException:  # the client went away (cancelled): give back a slot handed over meanwhile
            if waiter.done() and not waiter.cancelled():
                self._release()
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise
        return None  # ``_release`` handed its slot over (in_flight unchanged)

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the oldest waiter
                return
        self.in_flight -= 1

    async def _reject(self, scope: Scope, send: Send, reason: str) -> None:
        self.shed += 1
        if self.on_shed is not None:
            self.on_shed(reason)
        limits = self.limits
        method, path = scope.get("method", "?"), scope.get("path", "?")
        text = (f"rejected execution of request [{method} {path}] on hybridrank admission "
                f"[in_flight = {self.in_flight}/{limits.max_in_flight}, queued = {len(self._waiters)}, "
                f"queue capacity = {limits.max_queued}, {reason.replace('_', ' ')}]")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = dumps(es_error(429, REJECTED, text))
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", json_media_type(headers).encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(limits.retry_after_s).encode()),
            (PRODUCT_HEADER.lower().encode(), PRODUCT_VALUE.encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
