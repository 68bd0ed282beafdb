"""Read an app's own search request: rerank it, or pass it through untouched?

``plan_search`` turns one search (index, body, query-string parameters) into either a
``SearchPlan`` (the query text, the filters both legs share, paging inside the window) or a
``Passthrough`` naming why Elasticsearch should answer it alone. The query text and filters come from
``connector.endpoint.query_text``; the bodies sent upstream for a plan (its two legs, its page) are
``connector.endpoint.upstream_bodies``. All pure: dicts in, dicts out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.endpoint.query_text import extract_query
from connector.endpoint.wire import RequestRejected, truthy
from hybridrank.config import IndexConfig

Body = dict[str, Any]
EXT_KEY = "hybridrank"
OFF = "off"

# Body keys that ask for something a reranked window cannot honour -> Elasticsearch answers alone.
PASSTHROUGH_BODY_KEYS = ("sort", "search_after", "knn", "rescore", "retriever", "collapse", "pit",
                         "scroll", "slice", "rank", "suggest")
# Query-string parameters, by where they go upstream.
BODY_PARAMS = ("size", "from", "_source", "_source_includes", "_source_excludes", "track_total_hits",
               "timeout", "terminate_after", "stored_fields", "docvalue_fields", "version",
               "seq_no_primary_term", "track_scores")
HEADER_PARAMS = ("search_type", "preference", "routing", "request_cache", "allow_no_indices",
                 "expand_wildcards", "ignore_unavailable", "ignore_throttled", "allow_partial_search_results",
                 "ccs_minimize_roundtrips")
URL_PARAMS = ("rest_total_hits_as_int", "typed_keys", "max_concurrent_shard_requests", "pre_filter_shard_size",
              "error_trace", "human", "pretty", "batched_reduce_size")
OWN_PARAMS = ("explain",)


@dataclass(frozen=True, slots=True)
class Passthrough:
    """Elasticsearch answers this request alone; ``reason`` says why (logged, counted)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A search the endpoint reranks."""

    index: str
    query_text: str
    filters: tuple[Body, ...]
    from_: int
    size: int
    window: int
    body: Body  # the app's body, URL body-parameters merged, our ext removed, no from/size
    header: Body  # the _msearch header for both legs (index + routing, preference...)
    url_params: dict[str, str]  # parameters for the upstream _msearch URL
    explain: bool = False
    variant: str | None = None
    es_explain: bool = False  # the app asked Elasticsearch's ``_explanation`` (``explain`` in its body or URL)

    @property
    def names_clauses(self) -> bool:
        """The app named clauses of its own (``_name`` in its query or post filter): Elasticsearch's
        ``matched_queries`` of its hits are the app's, and only a search gives them."""
        return any('"_name"' in json.dumps(self.body.get(key), separators=(",", ":"))
                   for key in ("query", "post_filter"))

    @property
    def beyond_window(self) -> bool:
        """A page beyond the candidate window: Elasticsearch judges it first (``upstream_bodies.render_check``
        sends ``from``/``size``: beyond its own result window it refuses), else ``window_rejection``."""
        return self.from_ + self.size > self.window


def window_rejection(plan: SearchPlan) -> RequestRejected:
    """Our 400 for a page Elasticsearch would serve but the reranked window does not reach."""
    return RequestRejected(
        f"Result window is too large for reranking, from + size must be less than or equal to: [{plan.window}] "
        f"but was [{plan.from_ + plan.size}]. Raise candidate_window of index [{plan.index}], or send header "
        f"X-Hybridrank-Variant: off to let Elasticsearch answer alone."
    )


# -- request cleaning -----------------------------------------------------------------------------
def pop_ext(body: Body) -> tuple[Body, Body]:
    """``body`` without ``ext.hybridrank`` (Elasticsearch rejects unknown ext sections), and that block."""
    ext = body.get("ext")
    if not isinstance(ext, dict) or EXT_KEY not in ext:
        return body, {}
    cleaned = dict(body)
    rest = {k: v for k, v in ext.items() if k != EXT_KEY}
    if rest:
        cleaned["ext"] = rest
    else:
        del cleaned["ext"]
    own = ext[EXT_KEY]
    return cleaned, own if isinstance(own, dict) else {}


def _csv(value: str) -> list[str]:
    return [part for part in value.split(",") if part]


def _param_value(name: str, raw: str) -> Any:
    if name in ("size", "from", "terminate_after"):
        return int(raw)
    if name in ("version", "seq_no_primary_term", "track_scores"):
        return truthy(raw)
    if name == "track_total_hits":
        return int(raw) if raw.lstrip("-").isdigit() else truthy(raw)
    if name in ("stored_fields", "docvalue_fields"):
        return _csv(raw)
    return raw


def merge_body_params(body: Body, params: Mapping[str, str]) -> Body:
    """URL parameters that Elasticsearch reads as body keys, merged in (the URL wins, as in ES)."""
    out = dict(body)
    for name in BODY_PARAMS:
        if name not in params or name.startswith("_source"):
            continue
        out[name] = _param_value(name, params[name])
    if "_source" in params:
        raw = params["_source"]
        out["_source"] = truthy(raw) if raw.lower() in ("true", "false") else _csv(raw)
    if "_source_includes" in params or "_source_excludes" in params:
        spec: Body = {}
        if "_source_includes" in params:
            spec["includes"] = _csv(params["_source_includes"])
        if "_source_excludes" in params:
            spec["excludes"] = _csv(params["_source_excludes"])
        out["_source"] = spec
    return out


# -- planning ------------------------------------------------------------------------------------
def _count(value: Any) -> bool:
    """A non-negative integer as Elasticsearch reads ``size``/``from`` (``true`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def plan_search(
    index: str | None,
    body: Body,
    params: Mapping[str, str],
    profiles: Mapping[str, IndexConfig],
    *,
    explain_header: bool = False,
    variant_header: str | None = None,
) -> SearchPlan | Passthrough:
    """Decide how to answer one search (a page beyond the window is planned: ``SearchPlan.beyond_window``)."""
    if not isinstance(index, str) or not index or "," in index or "*" in index:
        return Passthrough("not exactly one index")
    config = profiles.get(index)
    if config is None:
        return Passthrough("index without a ranking profile")
    for name in params:
        if name not in BODY_PARAMS + HEADER_PARAMS + URL_PARAMS + OWN_PARAMS:
            return Passthrough(f"query parameter {name}")
    if params.get("explain", "true") not in ("", "true", "false"):
        return Passthrough("explain parameter not a boolean")  # Elasticsearch words the error itself
    if not isinstance(body, dict):
        return Passthrough("body is not a JSON object")
    cleaned, ext = pop_ext(body)
    variant = ext.get("variant") if isinstance(ext.get("variant"), str) else variant_header
    if variant == OFF:
        return Passthrough("variant off")
    for key in PASSTHROUGH_BODY_KEYS:
        if key in cleaned:
            return Passthrough(f"body has {key}")
    try:
        merged = merge_body_params(cleaned, params)
    except ValueError:
        return Passthrough("unparsable query parameter")  # Elasticsearch words the error itself
    size, from_ = merged.pop("size", 10), merged.pop("from", 0)
    if not _count(size) or not _count(from_):
        return Passthrough("size/from not non-negative integers")  # let Elasticsearch say so
    if size == 0:
        return Passthrough("size 0")
    text, filters = extract_query(merged.get("query"))
    explicit = ext.get("query_text")
    if isinstance(explicit, str) and explicit.strip():
        text = explicit.strip()
    if not text:
        return Passthrough("no query text")
    window = config.candidate_window
    if "post_filter" in merged and isinstance(merged["post_filter"], dict):
        filters.append(merged["post_filter"])
    header: Body = {"index": index}
    for name in HEADER_PARAMS:
        if name in params:
            header[name] = params[name]
    # an invalid body ``explain`` (a string, an object) is Elasticsearch's to refuse: the render check sends it
    es_explain = params.get("explain") in ("", "true") or merged.get("explain") is True
    explain = explain_header or es_explain or bool(ext.get("explain"))
    return SearchPlan(
        index=index, query_text=text, filters=tuple(filters), from_=from_, size=size, window=window,
        body=merged, header=header, url_params={k: params[k] for k in URL_PARAMS if k in params},
        explain=explain, variant=variant, es_explain=es_explain,
    )
