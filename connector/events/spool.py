"""The endpoint's event log: every event made durable on local disk first, shipped to Elasticsearch later.

- ``EventLog.append(events)`` writes JSON lines to the open spool segment and fsyncs once per call;
  the endpoint answers 202 only after that, so an accepted event survives a crash of the endpoint
  and any outage of Elasticsearch. A write or fsync that fails (disk full, I/O error) raises after
  cutting its partial bytes off the segment: nothing unacknowledged stays half-written, and no torn
  line can swallow the next acknowledged event (the route answers 503 meanwhile).
- ``EventLog.enqueue(event)`` is the request path's hand-off for impressions (a deque append, no I/O);
  the background task appends what is queued, and shutdown drains the queue before closing. At most
  ``max_queued`` wait (a full disk keeps them in memory); beyond, they are dropped and counted.
- ``EventLog.flush_once()`` seals the open segment and ships every sealed segment, oldest first
  (``connector.events.shipping``: each event stored exactly once, or dead-lettered). A segment is
  deleted only when each of its events is stored, a duplicate, or dead-lettered; what could not be
  shipped (a dead cluster, 429 or 5xx) stays on disk and the flusher retries with exponential backoff.
- On start, segments left by a previous process (open ones whose writer holds no lock) are sealed
  and replayed.

What goes in comes from the click intake (``connector.events.intake``) and the endpoint's
impressions; the files themselves (names, lines, torn lines) are ``connector.events.segments``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from connector.events.metrics import EventMetrics
from connector.events.segments import (
    OPEN_SUFFIX,
    SEGMENT_PREFIX,
    count_lines,
    encode_line,
    fsync_dir,
    new_segment_name,
    read_segment,
    rewrite_segment,
    sealed_path,
)
from connector.events.shipping import FlushResult, Shipper, ship_lock
from hybridrank.config import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("hybridrank.events")
_LINGER_S = 0.05  # how long queued impressions wait for company before one append (they are not acknowledged)


class EventLog:
    """One endpoint's durable event spool and its shipper to the events index."""

    def __init__(
        self,
        spool_dir: Path,
        events_index: str,
        *,
        client_factory: Callable[[], Elasticsearch],
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        max_backoff_s: float = 30.0,
        max_queued: int = 10_000,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.spool_dir = Path(spool_dir).expanduser()
        self.events_index = events_index
        self.client_factory = client_factory
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self.max_queued = max_queued
        self._dropping = False
        self.metrics = EventMetrics(registry or CollectorRegistry())
        self._shipper = Shipper(self.spool_dir, events_index, client_factory=client_factory, metrics=self.metrics)
        self._lock = threading.Lock()  # the open segment and the backlog count
        self._segment: IO[bytes] | None = None
        self._segment_path: Path | None = None
        self._segment_events = 0
        self._backlog = 0
        self._opened = False
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @classmethod
    def from_settings(cls, settings: Settings, *, url: str | None = None,
                      registry: CollectorRegistry | None = None) -> EventLog:
        """The log of ``settings.feedback``, shipping to ``url`` (default: the configured cluster)."""
        from connector.client import make_client

        feedback = settings.feedback
        return cls(settings.spool_dir, feedback.events_index,
                   client_factory=lambda: make_client(settings, url=url, timeout_s=10.0),
                   batch_size=feedback.batch_size, flush_interval_s=feedback.flush_interval_s,
                   max_queued=feedback.max_queued_impressions, registry=registry)

    # -- writing --------------------------------------------------------------------------------
    def append(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append events to the spool; returns once they are on disk (one fsync per call)."""
        if not events:
            return
        payload = b"".join(encode_line(ev) for ev in events)
        with self._lock:
            self._ensure_open()
            segment = self._open_segment()
            start = segment.tell()
            try:
                _write_all(segment.fileno(), payload)
                os.fsync(segment.fileno())
            except OSError:
                self._undo_append(start)
                raise
            self._segment_events += len(events)
            self._backlog += len(events)
            self.metrics.backlog.set(self._backlog)
        for ev in events:
            self.metrics.appended.labels(type=str(ev.get("type", "?"))).inc()

    def enqueue(self, event: dict[str, Any]) -> None:
        """Hand an event to the background task (no I/O): the request path's way to log an impression.

        At most ``max_queued`` wait in memory (the spool's disk may be full for a while): beyond that
        the event is dropped and counted (``hybridrank_events_dropped``), so memory stays bounded.
        """
        if len(self._queue) >= self.max_queued:
            self.metrics.dropped.labels(type=str(event.get("type", "?"))).inc()
            if not self._dropping:
                log.error("impression queue full (the spool cannot be written?): dropping impressions",
                          extra={"queued": len(self._queue), "spool": str(self.spool_dir)})
            self._dropping = True
            return
        self._dropping = False
        self._queue.append(event)
        self.metrics.queued.set(len(self._queue))
        if self._wake is not None and threading.get_ident() == self._loop_thread:
            self._wake.set()

    def drain(self) -> int:
        """Append every queued event to the spool (blocking); how many."""
        batch: list[dict[str, Any]] = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            try:
                self.append(batch)
            except Exception:
                self._queue.extendleft(reversed(batch))  # still in memory: the next drain retries
                raise
            finally:
                self.metrics.queued.set(len(self._queue))
        return len(batch)

    @property
    def backlog(self) -> int:
        """Events in the spool (on disk) not yet stored in Elasticsearch."""
        with self._lock:
            self._ensure_open()
            return self._backlog

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- shipping -------------------------------------------------------------------------------
    def rotate(self) -> Path | None:
        """Seal the open segment (if it holds events); the sealed path."""
        with self._lock:
            return self._seal_current()

    def flush_once(self, *, wait_s: float = 0.0) -> FlushResult:
        """Drain the queue, seal the open segment and ship every sealed segment, oldest first.

        Only one shipper works on a spool at a time. By default a flush that finds another one at
        work (the endpoint's flusher, ``hybridrank events flush``) gives up at once with an error;
        with ``wait_s`` it waits up to that long for it to finish, then ships whatever is left.
        """
        result = FlushResult()
        self._ensure_open_locked()
        self.drain()
        self.rotate()
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with ship_lock(self.spool_dir, wait_s) as ours:
            if not ours:
                result.error = "another process is shipping this spool"
                return result
            for path in self.sealed_segments():
                if not self._ship(path, result):
                    break
        if result.error:
            self.metrics.flush_failures.inc()
        return result

    def sealed_segments(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.glob(f"{SEGMENT_PREFIX}*.jsonl") if p.is_file())

    def _ship(self, path: Path, result: FlushResult) -> bool:
        """Ship one segment; False (and ``result.error``) when the rest must wait for a retry."""
        events, bad_lines = read_segment(path)
        for line, reason in bad_lines:
            self._shipper.dead_letter([{"line": line}], [reason], result)
        if not events:
            self._forget(path, len(bad_lines))
            result.segments_done += 1
            return True
        delivery = self._shipper.deliver(events, batch_size=self.batch_size, result=result)
        if delivery.rejected:
            self._shipper.dead_letter([events[i] for i, _ in delivery.rejected],
                                      [r for _, r in delivery.rejected], result)
        remaining = [ev for i, ev in enumerate(events) if i not in delivery.done]
        if remaining:
            rewrite_segment(path, remaining)
            self._forget(None, len(events) - len(remaining) + len(bad_lines))
            result.retained += len(remaining) + sum(count_lines(p) for p in self.sealed_segments() if p > path)
            result.error = delivery.transient or "events left unshipped"
            log.warning("events kept in the spool for a retry",
                        extra={"segment": path.name, "kept": len(remaining), "reason": result.error})
            return False
        self._forget(path, len(events) + len(bad_lines))
        result.segments_done += 1
        return True

    def _forget(self, path: Path | None, count: int) -> None:
        if path is not None:
            path.unlink(missing_ok=True)
        with self._lock:
            self._backlog = max(0, self._backlog - count)
            self.metrics.backlog.set(self._backlog)

    # -- segments -------------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        """First use: adopt segments left by a dead process and count the backlog (lock held)."""
        if self._opened:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.spool_dir.glob(f"{SEGMENT_PREFIX}*.jsonl{OPEN_SUFFIX}")):
            try:
                with open(path, "ab") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its writer is gone
                    os.replace(path, sealed_path(path))
            except BlockingIOError:
                continue  # a live endpoint still writes it
        self._backlog = sum(count_lines(p) for p in self.sealed_segments())
        if self._backlog:
            log.info("replaying spooled events", extra={"events": self._backlog, "spool": str(self.spool_dir)})
        self.metrics.backlog.set(self._backlog)
        self._opened = True

    def _open_segment(self) -> IO[bytes]:
        if self._segment is None:
            path = self.spool_dir / new_segment_name()
            # unbuffered: a failed write leaves nothing pending in a buffer for a later flush to write
            handle = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open across appends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fsync_dir(self.spool_dir)
            except OSError:
                handle.close()
                path.unlink(missing_ok=True)
                raise
            self._segment, self._segment_path = handle, path
            self._segment_events = 0
        return self._segment

    def _undo_append(self, start: int) -> None:
        """A write or fsync failed (disk full, I/O error): nothing of this append may stay behind, or
        a torn line would swallow the next acknowledged event. Cut the segment back to ``start``; if
        even that fails, retire the segment (its torn tail is reported at replay, never acknowledged)."""
        assert self._segment is not None and self._segment_path is not None
        try:
            os.ftruncate(self._segment.fileno(), start)
            os.fsync(self._segment.fileno())
        except OSError:
            log.exception("cannot cut a failed append off the spool segment; retiring it",
                          extra={"segment": self._segment_path.name})
            with contextlib.suppress(OSError):
                self._seal_current()
            if self._segment is not None:  # sealing failed too: a later start adopts the open file
                self._segment.close()
                self._segment, self._segment_path = None, None

    def _seal_current(self) -> Path | None:
        if self._segment is None or self._segment_path is None:
            return None
        sealed = sealed_path(self._segment_path)
        os.replace(self._segment_path, sealed)  # renamed while the lock is still held
        fsync_dir(self.spool_dir)
        self._segment.close()
        self._segment = None
        self._segment_path = None
        if not self._segment_events:
            sealed.unlink(missing_ok=True)
            return None
        return sealed

    def close(self) -> None:
        """Append what is queued and seal the open segment (events stay on disk for the next flush)."""
        self.drain()
        with self._lock:
            self._seal_current()
        self._shipper.close()

    # -- the background task (asyncio) --------------------------------------------------------------
    async def start(self) -> None:
        """Adopt leftover segments, then drain the impression queue and flush in the background."""
        from anyio import to_thread

        await to_thread.run_sync(self._ensure_open_locked)
        self._wake = asyncio.Event()
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._tasks = [asyncio.create_task(self._drainer(), name="hybridrank-events-drain"),
                       asyncio.create_task(self._flusher(), name="hybridrank-events-flush")]

    async def aclose(self, *, final_flush_timeout_s: float = 5.0) -> None:
        """Stop the tasks, spool everything queued, try one last flush (bounded), seal the segment."""
        from anyio import to_thread

        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await to_thread.run_sync(self.drain)
        try:
            result = await asyncio.wait_for(to_thread.run_sync(self.flush_once, abandon_on_cancel=True),
                                            final_flush_timeout_s)
            if result.error:
                log.warning("events left in the spool at shutdown", extra={"events": result.retained,
                                                                           "reason": result.error})
        except TimeoutError:
            log.warning("final flush timed out; events stay in the spool", extra={"spool": str(self.spool_dir)})
        await to_thread.run_sync(self.close)
        self._wake = None

    def _ensure_open_locked(self) -> None:
        with self._lock:
            self._ensure_open()

    async def _drainer(self) -> None:
        from anyio import to_thread

        assert self._wake is not None
        while not self._stopping:  # Python 3.11's wait_for can swallow a cancel; the flag ends the loop anyway
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._queue and len(self._queue) < self.batch_size and not self._stopping:
                # linger: under load one worker-thread hop and one fsync take many impressions, not one each
                # (per search they were ~5% of the endpoint's samples in a py-spy profile)
                await asyncio.sleep(_LINGER_S)
            if self._queue:
                try:
                    await to_thread.run_sync(self.drain)
                except Exception:
                    log.exception("cannot append impressions to the spool; kept in memory")
                    await asyncio.sleep(min(self.flush_interval_s, 1.0))

    async def _flusher(self) -> None:
        from anyio import to_thread

        delay = self.flush_interval_s
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                result = await to_thread.run_sync(self.flush_once)
            except Exception as exc:  # a full disk, a bug: log, back off, never die
                log.exception("event flush failed")
                result = FlushResult(error=str(exc))
            delay = self.flush_interval_s if result.error is None else min(delay * 2, self.max_backoff_s)


def _write_all(fd: int, payload: bytes) -> None:
    """``os.write`` until all of ``payload`` is written (a write may be partial); OSError as it comes."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


__all__ = ["EventLog"]
