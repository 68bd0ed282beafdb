"""The event log as data: impressions with their clicks, read back from the events index.

The endpoint writes impression and click documents to ``settings.feedback.events_index``; their
schema (types, ids, mapping, timestamps) is ``connector.events.schema``.

Everything downstream (click statistics, click-trained models, experiment reports) reads
``Impression`` objects, built either from the index (``read_impressions``) or from plain dicts
(``impressions_from_events``) so the statistics are testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.events.schema import CLICK, IMPRESSION, parse_time

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

_TERMS_CHUNK = 10_000  # request ids per click lookup (Elasticsearch allows 65,536 terms)


@dataclass(frozen=True, slots=True)
class Shown:
    doc_id: str
    position: int  # 1-based
    team: str | None = None
    features: tuple[float, ...] | None = None  # NaN = missing
    shared: bool = False  # interleaving: inside the rankings' shared prefix (ltr.experiments.credit)


@dataclass
class Impression:
    request_id: str
    timestamp: datetime
    index: str
    query: str
    hits: list[Shown]
    user_id: str | None = None
    session_id: str | None = None
    experiment: str | None = None
    variant: str | None = None
    ranker: str | None = None
    model_id: str | None = None
    feature_names: list[str] | None = None
    clicks: dict[str, datetime] = field(default_factory=dict)  # doc_id -> first click time
    dwell_ms: dict[str, float] = field(default_factory=dict)
    conversions: set[str] = field(default_factory=set)

    @property
    def clicked_positions(self) -> list[int]:
        return sorted(h.position for h in self.hits if h.doc_id in self.clicks)

    @property
    def unit(self) -> str:
        """The randomisation unit: user, else session, else the search itself."""
        return self.user_id or self.session_id or self.request_id


def _features(raw: Any) -> tuple[float, ...] | None:
    if raw is None:
        return None
    return tuple(float("nan") if v is None else float(v) for v in raw)


def impressions_from_events(events: Iterable[Mapping[str, Any]], *, since: datetime | None = None,
                            until: datetime | None = None) -> tuple[list[Impression], int]:
    """Join clicks to their impressions; returns (impressions in time order, orphan clicks).

    An orphan click names a request with no stored impression (or a doc it did not show); it is
    counted, never silently dropped, so the caller can report it.
    """
    impressions: dict[str, Impression] = {}
    clicks: list[Mapping[str, Any]] = []
    for ev in events:
        kind = ev.get("type")
        if kind == IMPRESSION:
            ts = parse_time(ev["@timestamp"])
            if (since and ts < since) or (until and ts >= until):
                continue
            hits = [Shown(str(h["doc_id"]), int(h["position"]), h.get("team"), _features(h.get("features")),
                          bool(h.get("shared", False))) for h in ev.get("hits") or []]
            impressions[str(ev["request_id"])] = Impression(
                request_id=str(ev["request_id"]), timestamp=ts, index=str(ev.get("index", "")),
                query=str(ev.get("query", "")), hits=hits, user_id=ev.get("user_id"),
                session_id=ev.get("session_id"), experiment=ev.get("experiment"), variant=ev.get("variant"),
                ranker=ev.get("ranker"), model_id=ev.get("model_id"), feature_names=ev.get("feature_names"))
        elif kind == CLICK:
            clicks.append(ev)
    orphans = 0
    for ev in clicks:
        imp = impressions.get(str(ev.get("request_id")))
        doc = str(ev.get("doc_id"))
        if imp is None or all(h.doc_id != doc for h in imp.hits):
            orphans += 1
            continue
        ts = parse_time(ev["@timestamp"])
        if doc not in imp.clicks or ts < imp.clicks[doc]:
            imp.clicks[doc] = ts
        if ev.get("dwell_ms") is not None:
            imp.dwell_ms[doc] = max(imp.dwell_ms.get(doc, 0.0), float(ev["dwell_ms"]))
        if ev.get("conversion"):
            imp.conversions.add(doc)
    return sorted(impressions.values(), key=lambda i: (i.timestamp, i.request_id)), orphans


def scan_events(client: Elasticsearch, events_index: str, *, index: str | None = None,
                experiment: str | None = None) -> Iterator[dict[str, Any]]:
    """The impressions (optionally of one searched index or experiment), then the clicks on them.

    Without a filter every click is read, so a click naming no stored impression shows up as an
    orphan; with one, only the clicks of the selected impressions' request ids are read (clicks
    carry no index or experiment), so clicks of other traffic are neither read nor miscounted.
    """
    from elasticsearch import helpers

    from connector.client import translate_errors

    filters: list[dict[str, Any]] = [{"term": {"type": IMPRESSION}}]
    if index:
        filters.append({"term": {"index": index}})
    if experiment:
        filters.append({"term": {"experiment": experiment}})

    def scan(query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for hit in helpers.scan(client, index=events_index, query={"query": query}, size=2000,
                                preserve_order=False):
            yield hit["_source"]

    with translate_errors(index=events_index):
        client.indices.refresh(index=events_index)
        if not index and not experiment:
            yield from scan({"match_all": {}})
            return
        request_ids: list[str] = []
        for event in scan({"bool": {"filter": filters}}):
            request_ids.append(str(event["request_id"]))
            yield event
        for start in range(0, len(request_ids), _TERMS_CHUNK):
            chunk = request_ids[start : start + _TERMS_CHUNK]
            yield from scan({"bool": {"filter": [{"term": {"type": CLICK}}, {"terms": {"request_id": chunk}}]}})


def read_impressions(client: Elasticsearch, events_index: str, *, index: str | None = None,
                     experiment: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> tuple[list[Impression], int]:
    """Impressions (with clicks) from the events index; see ``impressions_from_events``.

    The orphan count covers the whole events index (clicks naming a request no impression has), plus
    the selected impressions' clicks on documents they did not show.
    """
    impressions, orphans = impressions_from_events(
        scan_events(client, events_index, index=index, experiment=experiment), since=since, until=until)
    if index or experiment:
        orphans += unattributed_clicks(client, events_index)
    return impressions, orphans


def unattributed_clicks(client: Elasticsearch, events_index: str) -> int:
    """Clicks whose request id has no impression in the events index (request ids only are read)."""
    from elasticsearch import helpers

    from connector.client import translate_errors

    def ids(kind: str) -> Iterator[str]:
        for hit in helpers.scan(client, index=events_index, size=5000, preserve_order=False,
                                query={"query": {"term": {"type": kind}}, "_source": ["request_id"]}):
            yield str(hit["_source"].get("request_id"))

    with translate_errors(index=events_index):
        shown = set(ids(IMPRESSION))
        return sum(1 for request_id in ids(CLICK) if request_id not in shown)
