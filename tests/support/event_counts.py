"""What the events index holds, per event id: the exactly-once check of the fault tests and the bench."""

from __future__ import annotations

import collections
from typing import Any

from elasticsearch import Elasticsearch


def stored_event_ids(client: Elasticsearch, index: str, *, kind: str = "click") -> collections.Counter[str]:
    """How many documents of type ``kind`` carry each ``event_id`` (a composite aggregation: exact, paged)."""
    client.indices.refresh(index=index)
    counts: collections.Counter[str] = collections.Counter()
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": 5000, "sources": [{"id": {"terms": {"field": "event_id"}}}]}
        if after:
            composite["after"] = after
        response = client.search(index=index, size=0, query={"term": {"type": kind}},
                                 aggs={"ids": {"composite": composite}})
        buckets = response["aggregations"]["ids"]["buckets"]
        counts.update({b["key"]["id"]: b["doc_count"] for b in buckets})
        after = response["aggregations"]["ids"].get("after_key")
        if not buckets or not after:
            return counts


def duplicates(counts: collections.Counter[str]) -> int:
    """Documents beyond the first per event id."""
    return sum(n - 1 for n in counts.values() if n > 1)
