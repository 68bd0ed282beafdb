"""The events index's schema: the two event types, their ids, the index mapping, the timestamp forms.

The endpoint writes two kinds of event documents (``_id`` = ``event_id``, so a retried event is
stored once) to ``settings.feedback.events_index``:

- impression: ``{"event_id", "type": "impression", "@timestamp", "request_id", "user_id",
  "session_id", "index", "query", "experiment", "variant", "ranker", "model_id", "feature_names",
  "hits": [{"doc_id", "position", "team", "shared"?, "features"}]}`` — ``position`` is 1-based on the
  result list the user saw, ``team`` is "A", "B", … under interleaving (else null), ``shared`` (only
  under interleaving) whether the hit lies in the rankings' shared prefix, ``features`` the logged
  feature vector (null entries = missing, see ``finite_list``) in ``feature_names`` order, or null
  for the hybrid order;
- click: ``{"event_id", "type": "click", "@timestamp", "request_id", "doc_id", "user_id",
  "session_id", "dwell_ms", "conversion", "principal"}`` — ``principal`` is who posted it as
  Elasticsearch authenticated them (``user``, or ``user/api_key/<id>``:
  ``connector.endpoint.auth``), absent when the endpoint's own routes do not authenticate; a report
  can leave a source out by it.

The event log writes these and ``ltr.clicks.impressions`` reads them back, so both take the schema
from here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hybridrank.errors import DataError

IMPRESSION = "impression"
CLICK = "click"

EVENTS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "event_id": {"type": "keyword"},
        "type": {"type": "keyword"},
        "@timestamp": {"type": "date"},
        "request_id": {"type": "keyword"},
        "user_id": {"type": "keyword"},
        "session_id": {"type": "keyword"},
        "index": {"type": "keyword"},
        "query": {"type": "keyword"},
        "experiment": {"type": "keyword"},
        "variant": {"type": "keyword"},
        "ranker": {"type": "keyword"},
        "model_id": {"type": "keyword"},
        "doc_id": {"type": "keyword"},
        "dwell_ms": {"type": "float"},
        "conversion": {"type": "boolean"},
        "principal": {"type": "keyword"},
        "feature_names": {"type": "keyword", "index": False},
        "hits": {"type": "object", "enabled": False},
    },
}


def click_event_id(request_id: str, doc_id: str) -> str:
    """The default id of a click: one click per (search, document), so retries are idempotent."""
    return "click-" + hashlib.sha256(f"{request_id}\x1f{doc_id}".encode()).hexdigest()[:32]


def impression_event_id(request_id: str) -> str:
    """The id of a search's impression: one per request id, so a re-logged impression is stored once."""
    return click_event_id(request_id, "\x00impression").replace("click-", "impression-", 1)


def parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000.0, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise DataError(f"event timestamp is not ISO-8601: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def finite_list(row: Iterable[Any]) -> list[float | None]:
    """A feature row for JSON: NaN / infinities (missing) become null."""
    out: list[float | None] = []
    for value in row:
        number = float(value)
        out.append(number if math.isfinite(number) else None)
    return out
