"""Click intake: the body of ``POST /_hybridrank/events`` checked and completed into click events.

An app posts one JSON object, a JSON array or NDJSON; each event must name ``request_id`` and
``doc_id`` and may carry its own ``event_id``, ``user_id``, ``session_id``, ``dwell_ms``,
``conversion`` and ``@timestamp``. A bad body is refused whole with an Elasticsearch-shaped 400 naming
the first bad line, before anything reaches the event log; a good one comes out as click documents
of ``connector.events.schema``, each with a deterministic id so a retried post is stored once, and
with the ``principal`` the endpoint authenticated (never the app's word: an event naming one is refused).

What is accepted is what the events index will store: ids and names are non-empty UTF-8 strings of
at most ``MAX_ID_BYTES`` (Elasticsearch's own limit for a document ``_id``), ``dwell_ms`` a finite
number in the ``float`` field's range, ``@timestamp`` ISO-8601 or epoch milliseconds; anything else,
an unknown field, or more than ``max_events`` events, is a 400 — so no accepted event is refused
later by the index, which would leave it only in the spool's dead-letter file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connector.endpoint.wire import RequestRejected, split_ndjson
from connector.events.schema import CLICK, click_event_id, parse_time
from hybridrank.errors import DataError

CLICK_FIELDS = frozenset({"type", "event_id", "request_id", "doc_id", "user_id", "session_id", "dwell_ms",
                          "conversion", "@timestamp"})
CONVERSION = "conversion"  # accepted as a type on input; stored as a click with ``conversion: true``
MAX_ID_BYTES = 512  # Elasticsearch's limit for a document ``_id`` (``event_id`` is one; ``doc_id`` names one)
DEFAULT_MAX_EVENTS = 10_000
_FLOAT_MAX = 3.4028234663852886e38  # the events index maps ``dwell_ms`` as ``float``


def parse_events(raw: bytes, *, user_id: str | None = None, session_id: str | None = None,
                 principal: str | None = None, now: datetime | None = None,
                 max_events: int = DEFAULT_MAX_EVENTS) -> list[dict[str, Any]]:
    """The click events of a ``POST /_hybridrank/events`` body, validated and completed.

    The body is one JSON object, a JSON array of objects, or NDJSON; ``user_id``/``session_id`` are
    the request's defaults, ``principal`` who the endpoint authenticated (None: no authentication).
    Raises ``RequestRejected`` (an Elasticsearch-shaped 400) naming the first bad line; nothing is
    accepted from a bad body.
    """
    text = raw.strip()
    if not text:
        raise RequestRejected("request body is required", error_type="parse_exception")
    items: list[Any]
    labels: list[str]
    try:
        try:
            whole = json.loads(text)
        except ValueError:
            try:
                items = split_ndjson(raw)
            except ValueError as exc:
                raise RequestRejected(f"events body is neither JSON nor NDJSON: {exc}",
                                      error_type="x_content_parse_exception") from exc
            labels = [f"line {n}" for n, line in enumerate(raw.split(b"\n"), start=1) if line.strip()]
        else:
            items = whole if isinstance(whole, list) else [whole]
            labels = [f"event {n}" for n in range(1, len(items) + 1)] if isinstance(whole, list) else ["event"]
    except RecursionError as exc:
        raise RequestRejected("events body is nested too deeply", error_type="x_content_parse_exception") from exc
    if not items:
        raise RequestRejected("no events in the request body", error_type="parse_exception")
    if len(items) > max_events:
        raise RequestRejected(f"too many events in one request: {len(items)} > {max_events}; post them in parts")
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return [_click(item, label, user_id, session_id, principal, stamp)
            for item, label in zip(items, labels, strict=True)]


def _click(item: Any, where: str, user_id: str | None, session_id: str | None, principal: str | None,
           stamp: str) -> dict[str, Any]:
    def bad(reason: str) -> RequestRejected:
        return RequestRejected(f"{where}: {reason}")

    if not isinstance(item, dict):
        raise bad(f"an event must be a JSON object, got {type(item).__name__}")
    unknown = sorted(set(item) - CLICK_FIELDS)
    if unknown:
        raise bad(f"unknown field(s) {unknown}; an event has {sorted(CLICK_FIELDS)}")
    kind = item.get("type", CLICK)
    if kind not in (CLICK, CONVERSION):
        raise bad(f"[type] must be \"click\" or \"conversion\", got {kind!r}")
    out: dict[str, Any] = {"type": CLICK}
    for name in ("request_id", "doc_id"):
        value = item.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise bad(f"[{name}] is required (a non-empty string)")
        out[name] = _checked_text(name, value, bad)
    for name, default in (("user_id", user_id), ("session_id", session_id), ("event_id", None)):
        value = item.get(name, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise bad(f"[{name}] must be a non-empty string")
        out[name] = None if value is None else _checked_text(name, value, bad)
    out["principal"] = principal
    dwell = item.get("dwell_ms")
    if dwell is not None and (isinstance(dwell, bool) or not isinstance(dwell, int | float)
                              or not math.isfinite(dwell) or not 0 <= dwell <= _FLOAT_MAX):
        raise bad(f"[dwell_ms] must be a non-negative number, got {dwell!r}")
    out["dwell_ms"] = None if dwell is None else float(dwell)
    conversion = item.get("conversion", kind == CONVERSION)
    if not isinstance(conversion, bool):
        raise bad(f"[conversion] must be true or false, got {conversion!r}")
    out["conversion"] = conversion
    if item.get("@timestamp") is None:
        out["@timestamp"] = stamp
    elif isinstance(item["@timestamp"], bool) or not isinstance(item["@timestamp"], str | int | float):
        raise bad(f"[@timestamp] must be ISO-8601 text or epoch milliseconds, got {item['@timestamp']!r}")
    else:
        try:
            out["@timestamp"] = parse_time(item["@timestamp"]).isoformat(timespec="milliseconds")
        except (DataError, OverflowError, OSError, ValueError) as exc:
            raise bad(f"[@timestamp] {exc}") from exc
    if out["event_id"] is None:
        # one click and one conversion per (search, document): a retried post is stored once
        cid = click_event_id(out["request_id"], out["doc_id"])
        out["event_id"] = cid.replace("click-", "conversion-", 1) if conversion else cid
    return {k: v for k, v in out.items() if v is not None}


def _checked_text(name: str, value: str, bad: Callable[[str], RequestRejected]) -> str:
    """``value`` if the events index can store it: UTF-8 (no lone surrogates), at most ``MAX_ID_BYTES``."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise bad(f"[{name}] is not valid UTF-8 text") from exc
    if size > MAX_ID_BYTES:
        raise bad(f"[{name}] is {size} bytes long; at most {MAX_ID_BYTES}")
    return value
