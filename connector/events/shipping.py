"""Shipping spooled events to the events index, so that each is stored exactly once.

Events are bulk-indexed with ``_id = event_id`` and ``op_type=create``: a re-sent event answers 409
and is counted as a duplicate, so an event is stored once however often it is sent. A dead cluster,
a 429 or a 5xx (for the whole request or one item) leaves the event for a retry; a per-event
rejection (400, a mapping error) is final: it goes to ``rejected-<day>.jsonl`` in the spool with the
error and a log line. One shipper works on a spool at a time (``ship_lock``).

The spool (``connector.events.spool``) decides what to send and what stays on disk; this module
talks to Elasticsearch and says what became of each event.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from connector.events.metrics import EventMetrics
from connector.events.schema import EVENTS_MAPPING
from connector.events.segments import encode_line
from hybridrank.errors import ClusterError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("hybridrank.events")
REJECTED_PREFIX = "rejected-"
SHIP_LOCK = "ship.lock"
_TRANSIENT = frozenset({408, 429})  # plus every 5xx


@dataclass
class FlushResult:
    """What one ``flush_once`` did."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    retained: int = 0  # events still on disk for a later attempt
    segments_done: int = 0
    error: str | None = None


@dataclass
class Delivery:
    """What one bulk request made of a list of events (by position in that list)."""

    done: set[int] = field(default_factory=set)  # reached a final state: stored, duplicate or rejected
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position, reason): to dead-letter
    transient: str | None = None  # why the events not done must wait for a retry


class Shipper:
    """A spool's way to the events index: one client, the index created on first use, the dead-letter file."""

    def __init__(self, spool_dir: Path, events_index: str, *, client_factory: Callable[[], Elasticsearch],
                 metrics: EventMetrics) -> None:
        self.spool_dir = spool_dir
        self.events_index = events_index
        self.client_factory = client_factory
        self.metrics = metrics
        self._client: Elasticsearch | None = None
        self._index_ready = False

    def deliver(self, events: Sequence[Mapping[str, Any]], *, batch_size: int, result: FlushResult) -> Delivery:
        """Bulk-create ``events``; each stored or duplicate one is counted in ``result`` as its answer comes."""
        from elasticsearch import helpers

        delivery = Delivery()
        by_id: dict[str, list[int]] = collections.defaultdict(list)
        for i, ev in enumerate(events):
            by_id[str(ev["event_id"])].append(i)
        try:
            client = self._get_client()
            self._ensure_index(client)
            actions = ({"_op_type": "create", "_index": self.events_index, "_id": str(ev["event_id"]),
                        "_source": ev} for ev in events)
            for ok, item in helpers.streaming_bulk(
                    client, actions, chunk_size=batch_size, raise_on_error=False, raise_on_exception=True,
                    max_retries=3, initial_backoff=0.2, max_backoff=2.0):
                info = next(iter(item.values()))
                pending = [i for i in by_id.get(str(info.get("_id")), []) if i not in delivery.done]
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
                    delivery.transient = f"bulk item {status}: {_reason(info)}"
                    continue
                else:
                    delivery.rejected.append((position, f"{status}: {_reason(info)}"))
                delivery.done.add(position)
        except Exception as exc:  # a dead cluster, a whole-request 429/5xx, a timeout: keep the rest
            delivery.transient = f"{type(exc).__name__}: {exc}"
            self._index_ready = False  # the cluster may come back empty: check the index again
        return delivery

    def dead_letter(self, events: Sequence[Mapping[str, Any]], reasons: Sequence[str], result: FlushResult) -> None:
        """Append events Elasticsearch refused (or unreadable lines) to today's ``rejected-<day>.jsonl``."""
        day = datetime.now(UTC).strftime("%Y%m%d")
        path = self.spool_dir / f"{REJECTED_PREFIX}{day}.jsonl"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        payload = b"".join(encode_line({"rejected_at": stamp, "reason": reason, "event": ev})
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

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get_client(self) -> Elasticsearch:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def _ensure_index(self, client: Elasticsearch) -> None:
        if self._index_ready:
            return
        if not client.indices.exists(index=self.events_index):
            response = client.options(ignore_status=400).indices.create(index=self.events_index,
                                                                        mappings=EVENTS_MAPPING)
            error = response.body.get("error") if isinstance(response.body, dict) else None
            if error and error.get("type") != "resource_already_exists_exception":
                raise ClusterError(f"cannot create the events index [{self.events_index}]: {error.get('reason')}",
                                   status=400, error_type=str(error.get("type")))
        self._index_ready = True


@contextlib.contextmanager
def ship_lock(spool_dir: Path, wait_s: float) -> Iterator[bool]:
    """Hold the spool's ship lock for the block; yields False if another shipper kept it past ``wait_s``."""
    with open(spool_dir / SHIP_LOCK, "a") as lock:
        if not _lock_within(lock, wait_s):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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


def _reason(info: Mapping[str, Any]) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    return str(error)
