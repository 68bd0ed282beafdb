"""What the endpoint sends upstream for a ``SearchPlan``: its two legs and the fetch of its page.

The legs ask for ids and scores only (``connector.retrieval.hit_ids.ids_only``): the lexical leg is the
app's own search over the whole window (its totals and aggregations are Elasticsearch's answer to the
app), the kNN leg the same filters around the query vector. Only the page shown is rendered as the app
asked (``_source``, highlight, fields, named queries): by ``_mget`` when ``_source`` alone shapes it, else
by a small ids search. Query builders, as in ``connector.retrieval.queries``: plain dicts, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from connector.endpoint.dsl import Body, SearchPlan
from connector.retrieval import hit_ids, queries
from hybridrank.config import IndexConfig

if TYPE_CHECKING:
    from features.exact_scoring import ExactScoring

# Keys that only shape the returned hits: the legs leave them out (ids and scores suffice to rank)
# and the page fetch applies them to the page alone.
_RENDER_ONLY = ("_source", "stored_fields", "docvalue_fields", "fields", "script_fields", "version",
                "seq_no_primary_term", "highlight", "explain")
# Keys the legs keep because their query or aggregations may depend on them.
_SHARED_CONTEXT = ("runtime_mappings", "timeout")


def lexical_leg(plan: SearchPlan, scoring: ExactScoring | None = None) -> Body:
    """The app's own search over the whole window, ids and scores only (and, with ``scoring``, the
    features' exact scores of every hit: ``features.exact_scoring``).

    Its ``hits.total`` and aggregations are Elasticsearch's own answer to the app's query.
    """
    body = {k: v for k, v in plan.body.items() if k not in _RENDER_ONLY}
    body["size"] = plan.window
    body["from"] = 0
    body["_source"] = False
    if scoring is not None:
        body = scoring.on_leg(body)
    return hit_ids.ids_only(body, plan.index)


def knn_leg(plan: SearchPlan, vector: Iterable[float], config: IndexConfig,
            scoring: ExactScoring | None = None) -> Body:
    """The dense leg: same filters, ids and scores only, no totals or aggregations (with ``scoring``, as
    ``lexical_leg``)."""
    section = queries.knn_section(vector, config.vector_field, k=plan.window,
                                  num_candidates=max(config.knn_num_candidates, plan.window),
                                  filters=plan.filters)
    body: Body = {"knn": section, "size": plan.window, "track_total_hits": False, "_source": False}
    for key in _SHARED_CONTEXT:
        if key in plan.body:
            body[key] = plan.body[key]
    if scoring is not None:
        body = scoring.on_leg(body)
    return hit_ids.ids_only(body, plan.index)


def render_check(plan: SearchPlan) -> Body | None:
    """The app's render-only keys alone, over no document, or None if it sent none.

    The legs leave those keys out and the page fetch may not send them (an ``_mget``, or no page at
    all), so Elasticsearch would never judge them: this search, sent beside the legs in the same
    ``_msearch`` and free to run (``match_none``), lets it refuse what it would refuse in the app's own
    search (``explain: null``, a malformed highlight...), and the endpoint then relays its answer.
    """
    keys = {k: plan.body[k] for k in (*_RENDER_ONLY, *_SHARED_CONTEXT) if k in plan.body}
    if plan.beyond_window:  # Elasticsearch refuses a page beyond its own result window, whatever the query
        return {**keys, "query": {"match_none": {}}, "from": plan.from_, "size": plan.size, "track_total_hits": False}
    if not any(k in keys for k in _RENDER_ONLY if k != "_source") and _plain_source(keys.get("_source", True)):
        return None  # the common case costs nothing: a well-formed ``_source`` alone needs no check
    return {**keys, "query": {"match_none": {}}, "size": 1, "track_total_hits": False}


def _plain_source(value: object) -> bool:
    """A ``_source`` Elasticsearch always accepts: a flag, field patterns, or includes/excludes of them."""
    def patterns(v: object) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))

    if isinstance(value, bool) or patterns(value):
        return True
    return isinstance(value, dict) and set(value) <= {"includes", "excludes"} and all(map(patterns, value.values()))


def needs_page_fetch(plan: SearchPlan) -> bool:
    """Whether the page's hits need more than ``_index``/``_id`` (source, highlight, fields, explanation...)."""
    if plan.body.get("_source", True) is not False or plan.es_explain:
        return True
    return any(key in plan.body for key in _RENDER_ONLY if key != "_source")


def page_mget(plan: SearchPlan, doc_ids: Sequence[str]) -> Body | None:
    """The page as an ``_mget`` (cheaper than a search) when only ``_source`` shapes the hits, else None.

    Highlights, fields, named queries and routed searches need the search form (``page_body``).
    """
    if any(key in plan.body for key in _RENDER_ONLY if key != "_source") or set(plan.header) - {"index"} \
            or plan.es_explain:
        return None
    if plan.names_clauses:
        return None  # matched_queries come from a search only
    docs: list[Body] = [{"_index": plan.index, "_id": doc_id} for doc_id in doc_ids]
    if "_source" in plan.body:
        for doc in docs:
            doc["_source"] = plan.body["_source"]
    return {"docs": docs}


def page_body(plan: SearchPlan, doc_ids: Sequence[str]) -> Body:
    """The page's hits rendered as the app asked: its ``_source``, highlight, fields, named queries, and
    Elasticsearch's ``_explanation`` (with ``_shard`` and ``_node``) when the app asked for it.

    The app's query rides along as a ``should`` so highlights, ``matched_queries`` and the explanation
    are the ones Elasticsearch gives for that query; the ids filter keeps documents only the kNN leg found.
    """
    query: Body = {"ids": {"values": list(doc_ids)}}
    app_query = plan.body.get("query")
    bool_query: Body = {"filter": [query]}
    if isinstance(app_query, dict) and app_query:
        bool_query["should"] = [app_query]
    body: Body = {"query": {"bool": bool_query}, "size": len(doc_ids), "track_total_hits": False}
    for key in (*_RENDER_ONLY, *_SHARED_CONTEXT):
        if key in plan.body and key != "explain":
            body[key] = plan.body[key]
    if plan.es_explain:
        body["explain"] = True
    return body
