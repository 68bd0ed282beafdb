"""The endpoint's event log: every event made durable on local disk first, shipped to Elasticsearch later.

- ``EventLog.append(events)`` writes JSON lines to the open spool segment and fsyncs once per call;
  the endpoint answers 202 only after that, so an accepted event survives a crash of the endpoint
  and any outage of Elasticsearch.
- ``EventLog.enqueue(event)`` is the request path's hand-off for impressions (a deque append, no I/O);
  the background task appends what is queued, and shutdown drains the queue before closing.
- ``EventLog.flush_once()`` seals the open segment and bulk-indexes every sealed segment into the
  events index with ``_id = event_id`` and ``op_type=create``: a re-sent event answers 409 and is
  counted as a duplicate, so an event is stored exactly once however often it is sent. A segment is
  deleted only when each of its events is stored, a duplicate, or dead-lettered; a dead cluster,
  429 or 5xx keeps the rest on disk and the flusher retries with exponential backoff. A per-event
  rejection (400, a mapping error) goes to ``rejected-<day>.jsonl`` with the error and a log line.
- On start, segments left by a previous process (open ones whose writer holds no lock) are sealed
  and replayed.

What goes in comes from the click intake (``connector.events.intake``) and the endpoint's impressions.

Segment files: ``events-<ns>-<token>.jsonl.open`` while written (flock held by its writer), then
``events-<ns>-<token>.jsonl``; names sort by creation time, so replay keeps event order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from connector.events.schema import EVENTS_MAPPING
from hybridrank.config import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("hybridrank.events")
OPEN_SUFFIX = ".open"
SEGMENT_PREFIX = "events-"
REJECTED_PREFIX = "rejected-"
_SHIP_LOCK = "ship.lock"
_TRANSIENT = frozenset({408, 429})  # plus every 5xx


# -- the log --------------------------------------------------------------------------------------
@dataclass
class FlushResult:
    """What one ``flush_once`` did."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    retained: int = 0  # events still on disk for a later attempt
    segments_done: int = 0
    error: str | None = None


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.appended = Counter("hybridrank_events_appended", "Events made durable in the spool, by type.",
                                ("type",), registry=registry)
        self.stored = Counter("hybridrank_events_stored", "Events indexed into the events index.",
                              registry=registry)
        self.duplicates = Counter("hybridrank_events_duplicates",
                                  "Events Elasticsearch already had (same event_id): stored once.", registry=registry)
        self.rejected = Counter("hybridrank_events_rejected", "Events Elasticsearch refused (dead-lettered).",
                                registry=registry)
        self.flush_failures = Counter("hybridrank_events_flush_failures",
                                      "Flushes that kept events in the spool (cluster down, 429, 5xx).",
                                      registry=registry)
        self.backlog = Gauge("hybridrank_events_spool_backlog", "Events in the spool not yet stored.",
                             registry=registry)
        self.queued = Gauge("hybridrank_events_queued", "Impressions handed off, not yet in the spool.",
                            registry=registry)


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
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.spool_dir = Path(spool_dir).expanduser()
        self.events_index = events_index
        self.client_factory = client_factory
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self.metrics = _Metrics(registry or CollectorRegistry())
        self._client: Elasticsearch | None = None
        self._index_ready = False
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
                   registry=registry)

    # -- writing --------------------------------------------------------------------------------
    def append(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append events to the spool; returns once they are on disk (one fsync per call)."""
        if not events:
            return
        payload = b"".join(_line(ev) for ev in events)
        with self._lock:
            self._ensure_open()
            segment = self._open_segment()
            segment.write(payload)
            segment.flush()
            os.fsync(segment.fileno())
            self._segment_events += len(events)
            self._backlog += len(events)
            self.metrics.backlog.set(self._backlog)
        for ev in events:
            self.metrics.appended.labels(type=str(ev.get("type", "?"))).inc()

    def enqueue(self, event: dict[str, Any]) -> None:
        """Hand an event to the background task (no I/O): the request path's way to log an impression."""
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
        with open(self.spool_dir / _SHIP_LOCK, "a") as lock:
            if not _lock_within(lock, wait_s):
                result.error = "another process is shipping this spool"
                return result
            try:
                for path in self.sealed_segments():
                    if not self._ship(path, result):
                        break
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        if result.error:
            self.metrics.flush_failures.inc()
        return result

    def sealed_segments(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.glob(f"{SEGMENT_PREFIX}*.jsonl") if p.is_file())

    def _ship(self, path: Path, result: FlushResult) -> bool:
        """Ship one segment; False (and ``result.error``) when the rest must wait for a retry."""
        events, bad_lines = _read_segment(path)
        for line, reason in bad_lines:
            self._dead_letter([{"line": line}], [reason], result)
        if not events:
            self._forget(path, len(bad_lines))
            result.segments_done += 1
            return True
        from elasticsearch import helpers

        done: set[int] = set()  # positions in ``events`` that reached a final state
        by_id: dict[str, list[int]] = collections.defaultdict(list)
        for i, ev in enumerate(events):
            by_id[str(ev["event_id"])].append(i)
        transient: str | None = None
        rejected: list[tuple[int, str]] = []
        try:
            client = self._get_client()
            self._ensure_index(client)
            actions = ({"_op_type": "create", "_index": self.events_index, "_id": str(ev["event_id"]),
                        "_source": ev} for ev in events)
            for ok, item in helpers.streaming_bulk(
                    client, actions, chunk_size=self.batch_size, raise_on_error=False, raise_on_exception=True,
                    max_retries=3, initial_backoff=0.2, max_backoff=2.0):
                info = next(iter(item.values()))
                pending = [i for i in by_id.get(str(info.get("_id")), []) if i not in done]
                if not pending:
                    continue
                position = pending[0]
                status = int(info.get("status", 500))
                if ok:
                    result.stored += 1
                    self.metrics.stored.inc()
                elif status == 409:
                    result.duplicates += 1
                    self.metrics.duplicates.inc()
                elif status in _TRANSIENT or status >= 500:
                    transient = f"bulk item {status}: {_reason(info)}"
                    continue
                else:
                    rejected.append((position, f"{status}: {_reason(info)}"))
                done.add(position)
        except Exception as exc:  # a dead cluster, a whole-request 429/5xx, a timeout: keep the rest
            transient = f"{type(exc).__name__}: {exc}"
            self._client_failed()
        if rejected:
            self._dead_letter([events[i] for i, _ in rejected], [r for _, r in rejected], result)
        remaining = [ev for i, ev in enumerate(events) if i not in done]
        if remaining:
            _rewrite(path, remaining)
            self._forget(None, len(events) - len(remaining) + len(bad_lines))
            result.retained += len(remaining) + sum(self._lines_in(p) for p in self.sealed_segments() if p > path)
            result.error = transient or "events left unshipped"
            log.warning("events kept in the spool for a retry",
                        extra={"segment": path.name, "kept": len(remaining), "reason": result.error})
            return False
        self._forget(path, len(events) + len(bad_lines))
        result.segments_done += 1
        return True

    def _dead_letter(self, events: Sequence[Mapping[str, Any]], reasons: Sequence[str], result: FlushResult) -> None:
        day = datetime.now(UTC).strftime("%Y%m%d")
        path = self.spool_dir / f"{REJECTED_PREFIX}{day}.jsonl"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        payload = b"".join(_line({"rejected_at": stamp, "reason": reason, "event": ev})
                           for ev, reason in zip(events, reasons, strict=True))
        with open(path, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        result.rejected += len(events)
        self.metrics.rejected.inc(len(events))
        for ev, reason in zip(events, reasons, strict=True):
            log.error("event rejected by Elasticsearch; dead-lettered",
                      extra={"event_id": ev.get("event_id"), "reason": reason, "file": str(path)})

    def _forget(self, path: Path | None, count: int) -> None:
        if path is not None:
            path.unlink(missing_ok=True)
        with self._lock:
            self._backlog = max(0, self._backlog - count)
            self.metrics.backlog.set(self._backlog)

    def _lines_in(self, path: Path) -> int:
        try:
            with open(path, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        except OSError:
            return 0

    def _get_client(self) -> Elasticsearch:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def _client_failed(self) -> None:
        self._index_ready = False  # the cluster may come back empty: check the index again

    def _ensure_index(self, client: Elasticsearch) -> None:
        if self._index_ready:
            return
        if not client.indices.exists(index=self.events_index):
            response = client.options(ignore_status=400).indices.create(index=self.events_index,
                                                                        mappings=EVENTS_MAPPING)
            error = response.body.get("error") if isinstance(response.body, dict) else None
            if error and error.get("type") != "resource_already_exists_exception":
                from hybridrank.errors import ClusterError

                raise ClusterError(f"cannot create the events index [{self.events_index}]: {error.get('reason')}",
                                   status=400, error_type=str(error.get("type")))
        self._index_ready = True

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
                    os.replace(path, path.with_name(path.name[: -len(OPEN_SUFFIX)]))
            except BlockingIOError:
                continue  # a live endpoint still writes it
        self._backlog = sum(self._lines_in(p) for p in self.sealed_segments())
        if self._backlog:
            log.info("replaying spooled events", extra={"events": self._backlog, "spool": str(self.spool_dir)})
        self.metrics.backlog.set(self._backlog)
        self._opened = True

    def _open_segment(self) -> IO[bytes]:
        if self._segment is None:
            name = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl{OPEN_SUFFIX}"
            self._segment_path = self.spool_dir / name
            handle = open(self._segment_path, "ab")  # noqa: SIM115 - kept open across appends
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._segment = handle
            self._segment_events = 0
            _fsync_dir(self.spool_dir)
        return self._segment

    def _seal_current(self) -> Path | None:
        if self._segment is None or self._segment_path is None:
            return None
        sealed = self._segment_path.with_name(self._segment_path.name[: -len(OPEN_SUFFIX)])
        os.replace(self._segment_path, sealed)  # renamed while the lock is still held
        _fsync_dir(self.spool_dir)
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
        if self._client is not None:
            self._client.close()
            self._client = None

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


# -- module helpers -------------------------------------------------------------------------------
def _lock_within(handle: IO[str], wait_s: float) -> bool:
    """Take an exclusive flock on ``handle``, trying for up to ``wait_s`` seconds; whether it was taken."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _line(event: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # a NaN slipped through: Elasticsearch would refuse it, write null instead
        text = json.dumps(_without_nan(event), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def _without_nan(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def _read_segment(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(events, [(bad line, reason)]): a torn last line after a crash is reported, never dropped silently."""
    events: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError as exc:
                bad.append((raw.decode("utf-8", "replace")[:10_000], f"{path.name}:{number}: unparsable ({exc})"))
                continue
            if not isinstance(event, dict) or not event.get("event_id"):
                bad.append((raw.decode("utf-8", "replace")[:10_000], f"{path.name}:{number}: no event_id"))
                continue
            events.append(event)
    return events, bad


def _rewrite(path: Path, events: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(b"".join(_line(ev) for ev in events))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(info: Mapping[str, Any]) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    return str(error)


__all__ = ["EventLog", "FlushResult"]
