"""Read an app's own search request: rerank it, or pass it through untouched?

``plan_search`` turns one search (index, body, query-string parameters) into either a
``SearchPlan`` (the query text, the filters both legs share, paging inside the window) or a
``Passthrough`` naming why Elasticsearch should answer it alone. ``lexical_leg`` / ``knn_leg`` build
the two upstream bodies. All pure: dicts in, dicts out.

Query text comes from ``ext.hybridrank.query_text`` or from the scoring text clauses (``match``,
``match_phrase``, ``multi_match``, ``combined_fields``, ``query_string``, ``simple_query_string``...)
found under ``must``/``should`` of a ``bool`` tree. ``filter`` and ``must_not`` clauses, and
non-text ``must`` clauses (which also restrict the result set), become the kNN leg's filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.endpoint.wire import RequestRejected, truthy
from connector.retrieval import hit_ids, queries
from hybridrank.config import IndexConfig

Body = dict[str, Any]
EXT_KEY = "hybridrank"
OFF = "off"

# Text clauses whose text is a query string: clause -> how to read it.
_FIELD_TEXT = ("match", "match_phrase", "match_phrase_prefix", "match_bool_prefix")
_QUERY_TEXT = ("multi_match", "combined_fields")
_SYNTAX_TEXT = ("query_string", "simple_query_string")

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


# -- query text and filters ---------------------------------------------------------------------
_SYNTAX_FIELD = re.compile(r"(?<![\w\\])[\w.*]+:(?=\S)")
_SYNTAX_OPS = re.compile(r"\b(AND|OR|NOT)\b|&&|\|\|")
_SYNTAX_CHARS = re.compile(r"[+\-!(){}\[\]^\"~*?\\/|]|(?<=[~^])\d+(\.\d+)?")
_SPACES = re.compile(r"\s+")


def clean_query_syntax(text: str) -> str:
    """The words of a Lucene / simple query string, without fields, operators or syntax."""
    text = _SYNTAX_FIELD.sub(" ", text)
    text = _SYNTAX_OPS.sub(" ", text)
    text = re.sub(r"[~^]\d+(\.\d+)?", " ", text)
    text = _SYNTAX_CHARS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _clauses(value: Any) -> list[Body]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _clause_text(clause: Body) -> str | None:
    """The text of one text clause, or None if it is not a text clause."""
    if len(clause) != 1:
        return None
    (kind, spec), = clause.items()
    if kind in _FIELD_TEXT and isinstance(spec, dict):
        fields = [(k, v) for k, v in spec.items() if k not in ("_name", "boost")]
        if len(fields) == 1:
            value = fields[0][1]
            text = value.get("query") if isinstance(value, dict) else value
            return str(text) if isinstance(text, str | int | float) else None
        return None
    if kind in _QUERY_TEXT and isinstance(spec, dict) and isinstance(spec.get("query"), str):
        return str(spec["query"])
    if kind in _SYNTAX_TEXT and isinstance(spec, dict) and isinstance(spec.get("query"), str):
        return clean_query_syntax(spec["query"])
    return None


@dataclass(slots=True)
class _Extraction:
    texts: list[str]
    filters: list[Body]


def _walk(clause: Body, out: _Extraction, *, conjunctive: bool) -> bool:
    """Collect text (and, where the clause must hold, filters); True if the clause held any text."""
    text = _clause_text(clause)
    if text is not None:
        if text.strip():
            out.texts.append(text.strip())
        return True
    if len(clause) != 1:
        return False
    (kind, spec), = clause.items()
    if not isinstance(spec, dict):
        return False
    if kind == "bool":
        found = False
        for sub in _clauses(spec.get("must")):
            scratch = _Extraction(texts=[], filters=[])
            if _walk(sub, scratch, conjunctive=conjunctive):
                out.texts.extend(scratch.texts)
                out.filters.extend(scratch.filters)
                found = True
            elif conjunctive:
                out.filters.append(sub)  # a non-text must clause still restricts the result set
        for sub in _clauses(spec.get("should")):
            found = _walk(sub, out, conjunctive=False) or found
        if conjunctive:
            out.filters.extend(_clauses(spec.get("filter")))
            must_not = _clauses(spec.get("must_not"))
            if must_not:
                out.filters.append({"bool": {"must_not": must_not}})
        return found
    if kind == "dis_max":
        found = False
        for sub in _clauses(spec.get("queries")):
            found = _walk(sub, out, conjunctive=False) or found
        return found
    if kind in ("function_score", "script_score") and isinstance(spec.get("query"), dict):
        return _walk(spec["query"], out, conjunctive=conjunctive)
    if kind == "boosting" and isinstance(spec.get("positive"), dict):
        return _walk(spec["positive"], out, conjunctive=conjunctive)
    if kind == "constant_score" and isinstance(spec.get("filter"), dict):
        if conjunctive:
            out.filters.append(spec["filter"])
        return False
    return False


def extract_query(query: Body | None) -> tuple[str, list[Body]]:
    """(query text, filter clauses) of an app's ``query``; text is "" if it has no text clause."""
    if not isinstance(query, dict) or not query:
        return "", []
    out = _Extraction(texts=[], filters=[])
    if not _walk(query, out, conjunctive=True) or not out.texts:
        return "", []
    return " ".join(dict.fromkeys(out.texts)), out.filters


# -- planning ------------------------------------------------------------------------------------
def plan_search(
    index: str | None,
    body: Body,
    params: Mapping[str, str],
    profiles: Mapping[str, IndexConfig],
    *,
    explain_header: bool = False,
    variant_header: str | None = None,
) -> SearchPlan | Passthrough:
    """Decide how to answer one search; raise ``RequestRejected`` for paging beyond the window."""
    if not index or "," in index or "*" in index:
        return Passthrough("not exactly one index")
    config = profiles.get(index)
    if config is None:
        return Passthrough("index without a ranking profile")
    for name in params:
        if name not in BODY_PARAMS + HEADER_PARAMS + URL_PARAMS + OWN_PARAMS:
            return Passthrough(f"query parameter {name}")
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
    if not isinstance(size, int) or not isinstance(from_, int) or size < 0 or from_ < 0:
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
    if from_ + size > window:
        raise RequestRejected(
            f"Result window is too large for reranking, from + size must be less than or equal to: [{window}] "
            f"but was [{from_ + size}]. Raise candidate_window of index [{index}], or send header "
            f"X-Hybridrank-Variant: off to let Elasticsearch answer alone."
        )
    if "post_filter" in merged and isinstance(merged["post_filter"], dict):
        filters.append(merged["post_filter"])
    header: Body = {"index": index}
    for name in HEADER_PARAMS:
        if name in params:
            header[name] = params[name]
    explain = explain_header or truthy(params.get("explain")) or bool(ext.get("explain"))
    return SearchPlan(
        index=index, query_text=text, filters=tuple(filters), from_=from_, size=size, window=window,
        body=merged, header=header, url_params={k: params[k] for k in URL_PARAMS if k in params},
        explain=explain, variant=variant,
    )


# Keys that only shape the returned hits: the legs leave them out (ids and scores suffice to rank)
# and the page fetch applies them to the page alone.
_RENDER_ONLY = ("_source", "stored_fields", "docvalue_fields", "fields", "script_fields", "version",
                "seq_no_primary_term", "highlight", "explain")
# Keys the legs keep because their query or aggregations may depend on them.
_SHARED_CONTEXT = ("runtime_mappings", "timeout")


def lexical_leg(plan: SearchPlan) -> Body:
    """The app's own search over the whole window, ids and scores only.

    Its ``hits.total`` and aggregations are Elasticsearch's own answer to the app's query.
    """
    body = {k: v for k, v in plan.body.items() if k not in _RENDER_ONLY}
    body["size"] = plan.window
    body["from"] = 0
    body["_source"] = False
    return hit_ids.ids_only(body, plan.index)


def knn_leg(plan: SearchPlan, vector: Iterable[float], config: IndexConfig) -> Body:
    """The dense leg: same filters, ids and scores only, no totals or aggregations."""
    section = queries.knn_section(vector, config.vector_field, k=plan.window,
                                  num_candidates=max(config.knn_num_candidates, plan.window),
                                  filters=plan.filters)
    body: Body = {"knn": section, "size": plan.window, "track_total_hits": False, "_source": False}
    for key in _SHARED_CONTEXT:
        if key in plan.body:
            body[key] = plan.body[key]
    return hit_ids.ids_only(body, plan.index)


def needs_page_fetch(plan: SearchPlan) -> bool:
    """Whether the page's hits need more than ``_index``/``_id`` (source, highlight, fields...)."""
    if plan.body.get("_source", True) is not False:
        return True
    return any(key in plan.body for key in _RENDER_ONLY if key != "_source")


def page_mget(plan: SearchPlan, doc_ids: Sequence[str]) -> Body | None:
    """The page as an ``_mget`` (cheaper than a search) when only ``_source`` shapes the hits, else None.

    Highlights, fields, named queries and routed searches need the search form (``page_body``).
    """
    if any(key in plan.body for key in _RENDER_ONLY if key != "_source") or set(plan.header) - {"index"}:
        return None
    if '"_name"' in json.dumps(plan.body.get("query"), separators=(",", ":")):
        return None  # matched_queries come from a search only
    docs: list[Body] = [{"_index": plan.index, "_id": doc_id} for doc_id in doc_ids]
    if "_source" in plan.body:
        for doc in docs:
            doc["_source"] = plan.body["_source"]
    return {"docs": docs}


def page_body(plan: SearchPlan, doc_ids: Sequence[str]) -> Body:
    """The page's hits rendered as the app asked: its ``_source``, highlight, fields, named queries.

    The app's query rides along as a ``should`` so highlights and ``matched_queries`` are the ones
    Elasticsearch gives for that query; the ids filter keeps documents only the kNN leg found.
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
    return body
