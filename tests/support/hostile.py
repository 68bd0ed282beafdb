"""Hostile requests for the endpoint and for Elasticsearch itself: generated and mutated search bodies,
query strings and headers (hypothesis strategies), and the comparison of the two answers.

One ``HostileRequest`` is sent twice: to the endpoint as is, and to Elasticsearch directly as an app
would send it there (our ``ext.hybridrank`` block and ``X-Hybridrank-*`` headers removed: only the
endpoint knows them). ``compare`` classifies the pair: ``ok`` (same status; for ``_msearch`` the same
status per item), ``own_5xx`` (the endpoint answered 5xx where Elasticsearch did not), ``hang`` (no
answer within the timeout), ``window`` (the endpoint's documented 400 for paging beyond the rerank
window), ``es_no_answer`` (Elasticsearch closed the connection without an answer, the endpoint said
503), or ``mismatch:<endpoint>/<es>``. Used by the CI property tests and ``bench/bench_reliability.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import strategies as st

FIELDS = ("title", "text", "category", "year", "embedding", "missing_field", "title.keyword", "*")
WORDS = ("cells", "protein", "DNA", "repair", "vitamin", "cancer", "", " ", "AND", "title:dna", "\"quoted",
         "(unbalanced", "a*", "~2", "ü", "日本", "\\", "\x00", "/regex/", "NOT", "+-")
TEXT_CLAUSES = ("match", "match_phrase", "match_phrase_prefix", "match_bool_prefix")
WINDOW_REASON = "Result window is too large for reranking"
VND = "application/vnd.elasticsearch+json; compatible-with="
MEDIA = ("application/json", "application/json; charset=UTF-8", f"{VND}9", f"{VND}8", f"{VND}7", "text/plain",
         "application/x-ndjson", "application/yaml", "application/smile", "*/*", "garbage/")
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30).map(
    lambda value: value.strip() or "x")  # what HTTP/1.1 can carry: no surrounding blanks

scalars = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(WORDS) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)
texts = st.sampled_from(WORDS) | st.text(max_size=40) | st.integers(-5, 5)


def _leaf_clause() -> st.SearchStrategy[dict[str, Any]]:
    field_name = st.sampled_from(FIELDS)
    match_spec = st.one_of(texts, st.fixed_dictionaries(
        {"query": texts}, optional={"operator": st.sampled_from(["and", "or", "xor"]), "boost": scalars,
                                    "fuzziness": st.sampled_from(["AUTO", 2, "x"]), "bogus": scalars}))
    return st.one_of(
        st.builds(lambda k, f, s: {k: {f: s}}, st.sampled_from(TEXT_CLAUSES), field_name, match_spec),
        st.builds(lambda q, fs: {"multi_match": {"query": q, "fields": fs}}, texts,
                  st.lists(st.sampled_from(FIELDS), max_size=3)),
        st.builds(lambda k, q: {k: {"query": q}}, st.sampled_from(["query_string", "simple_query_string",
                                                                     "combined_fields"]), texts),
        st.builds(lambda f, v: {"term": {f: v}}, field_name, scalars),
        st.builds(lambda f, v: {"terms": {f: v}}, field_name, st.lists(scalars, max_size=3) | scalars),
        st.builds(lambda f, op, v: {"range": {f: {op: v}}}, field_name, st.sampled_from(["gte", "lt", "bogus"]),
                  scalars),
        st.just({"match_all": {}}), st.builds(lambda f: {"exists": {"field": f}}, field_name),
        st.builds(lambda k, v: {k: v}, st.text(max_size=10), json_values),  # an unknown clause
    )


queries = st.recursive(
    _leaf_clause(),
    lambda inner: st.one_of(
        st.builds(lambda parts: {"bool": parts}, st.dictionaries(
            st.sampled_from(["must", "should", "filter", "must_not", "minimum_should_match", "boost"]),
            st.lists(inner, max_size=3) | inner, max_size=3)),
        st.builds(lambda qs: {"dis_max": {"queries": qs}}, st.lists(inner, max_size=3)),
        st.builds(lambda q: {"function_score": {"query": q}}, inner),
        st.builds(lambda q: {"constant_score": {"filter": q}}, inner),
        st.builds(lambda p, n: {"boosting": {"positive": p, "negative": n, "negative_boost": 0.5}}, inner, inner),
    ),
    max_leaves=6,
)
small_ints = st.integers(min_value=-3, max_value=40) | st.sampled_from([2**31, 10_001, 99]) | scalars
bodies: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries({}, optional={
    "query": queries | json_values,
    "size": small_ints, "from": small_ints,
    "_source": st.booleans() | st.lists(st.sampled_from(FIELDS), max_size=2) | scalars,
    "track_total_hits": st.booleans() | small_ints,
    "post_filter": queries | scalars,
    "aggs": st.just({"c": {"terms": {"field": "category"}}}) | json_values,
    "highlight": st.just({"fields": {"text": {}}}) | json_values,
    "sort": st.just(["_score"]) | json_values,
    "timeout": st.sampled_from(["1s", "x", "10ms"]) | scalars,
    "min_score": scalars,
    "explain": st.booleans() | scalars,
    "ext": st.fixed_dictionaries({}, optional={"hybridrank": json_values | st.fixed_dictionaries(
        {}, optional={"variant": st.sampled_from(["off", "hybrid", "es", "rrf", "model:nope"]) | scalars,
                      "query_text": texts, "explain": scalars})}),
    "bogus_key": json_values,
})
params = st.dictionaries(
    st.sampled_from(["size", "from", "_source", "_source_includes", "track_total_hits", "timeout", "explain",
                     "routing", "preference", "search_type", "typed_keys", "rest_total_hits_as_int", "q",
                     "ignore_unavailable", "pretty", "filter_path", "unknown_param"]),
    st.sampled_from(["0", "5", "-1", "true", "false", "abc", "", "1e3", " 5", "_local", "dfs_query_then_fetch",
                     "title", "9999999999"]), max_size=3)
headers = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from(MEDIA), "accept": st.sampled_from(MEDIA),
    "x-hybridrank-variant": st.sampled_from(["off", "hybrid", "es", "rrf", "model:nope", "variant:", ""]) | HEADER_TEXT,
    "x-hybridrank-explain": st.sampled_from(["1", "false", "yes"]),
    "x-hybridrank-user": HEADER_TEXT, "x-request-id": HEADER_TEXT, "x-opaque-id": HEADER_TEXT,
})


# Searches the endpoint reranks (query text, a page inside a window of 20), with generated keys beside them.
rerankable = st.builds(
    lambda text, size, extra, generated: {**generated, "query": {"bool": {"must": [{"match": {"text": text}}],
                                                                          **extra}}, "size": size},
    st.sampled_from(["cells protein", "DNA repair", "vitamin D", "immune response"]),
    st.integers(min_value=1, max_value=20),
    st.fixed_dictionaries({}, optional={"filter": st.just([{"term": {"category": "alpha"}}]),
                                        "must_not": st.just([{"range": {"year": {"lt": 2005}}}])}),
    bodies)


def mutate(raw: bytes, how: int, at: int) -> bytes:
    """A damaged copy of ``raw``: truncated, a byte flipped, junk inserted, or wrapped 500 levels deep."""
    if not raw:
        return b"{"
    at %= len(raw)
    if how == 0:
        return raw[:at]
    if how == 1:
        return raw[:at] + bytes([raw[at] ^ 0x5A]) + raw[at + 1:]
    if how == 2:
        return raw[:at] + b'",}]{\x00\xff' + raw[at:]
    return b'{"query":' + b'{"bool":{"must":' * 500 + b'{"match":{"text":"dna"}}' + b"}}" * 500 + b"}"


@dataclass
class HostileRequest:
    method: str
    path: str  # with {index} for the profiled index
    raw: bytes
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _msearch(items: list[tuple[dict[str, Any], Any]]) -> bytes:
    return b"".join(json.dumps(h).encode() + b"\n" + json.dumps(b).encode() + b"\n" for h, b in items)


msearch_headers = st.fixed_dictionaries({"index": st.just("{index}") | scalars | st.lists(scalars, max_size=2)},
                                        optional={"preference": scalars, "bogus": scalars})


@st.composite
def hostile_requests(draw: st.DrawFn) -> HostileRequest:
    """One search request: ``_search`` (a generated body, a rerankable one with generated keys beside its
    query, or a mutated one) or ``_msearch``."""
    kind = draw(st.sampled_from(["search", "search", "rerankable", "rerankable", "mutated", "msearch"]))
    if kind == "msearch":
        items = draw(st.lists(st.tuples(msearch_headers, bodies | rerankable), min_size=1, max_size=3))
        raw = _msearch(items)
        path = draw(st.sampled_from(["/_msearch", "/{index}/_msearch"]))
        media = {"content-type": "application/x-ndjson"}
        return HostileRequest("POST", path, raw, draw(params.filter(lambda p: "q" not in p)), media)
    raw = json.dumps(draw(rerankable if kind == "rerankable" else bodies)).encode()
    if kind == "rerankable":
        return HostileRequest("POST", "/{index}/_search", raw, {}, {"content-type": "application/json"})
    if kind == "mutated":
        raw = mutate(raw, draw(st.integers(0, 3)), draw(st.integers(0, 10_000)))
    chosen = draw(headers)
    if "content-type" not in chosen and draw(st.booleans()):
        chosen["content-type"] = "application/json"
    return HostileRequest(draw(st.sampled_from(["POST", "POST", "GET"])), "/{index}/_search", raw,
                          draw(params), chosen)


def for_elasticsearch(request: HostileRequest) -> HostileRequest:
    """The request as an app would send it to Elasticsearch directly: no ext.hybridrank, no X-Hybridrank-*."""
    heads = {k: v for k, v in request.headers.items() if not k.startswith("x-hybridrank-")}
    raw = request.raw
    try:
        parsed = [json.loads(line) for line in raw.splitlines() if line.strip()] if "_msearch" in request.path \
            else [json.loads(raw)]
    except ValueError:
        return HostileRequest(request.method, request.path, raw, request.params, heads)
    cleaned = []
    for item in parsed:
        if isinstance(item, dict) and isinstance(item.get("ext"), dict) and "hybridrank" in item["ext"]:
            item = {**item, "ext": {k: v for k, v in item["ext"].items() if k != "hybridrank"}}
            if not item["ext"]:
                del item["ext"]
        cleaned.append(item)
    if "_msearch" in request.path:
        raw = b"".join(json.dumps(item).encode() + b"\n" for item in cleaned)
    elif cleaned[0] is not parsed[0]:
        raw = json.dumps(cleaned[0]).encode()
    return HostileRequest(request.method, request.path, raw, request.params, heads)


@dataclass
class Verdict:
    verdict: str  # ok | own_5xx | hang | window | mismatch:<endpoint>/<es>
    endpoint_status: int | None
    es_status: int | None
    detail: str = ""
    reranked: bool = False  # the endpoint answered from its own window (X-Hybridrank-Ranker set)


def _send(client: httpx.Client, base: str, index: str, request: HostileRequest) -> httpx.Response:
    return client.request(request.method, base + request.path.replace("{index}", index),
                          content=request.raw.replace(b"{index}", index.encode()), params=request.params,
                          headers=request.headers)


def _item_statuses(response: httpx.Response) -> list[int] | None:
    try:
        items = response.json().get("responses")
    except (ValueError, AttributeError):
        return None
    return [int(i.get("status", 200)) for i in items] if isinstance(items, list) else None


def compare(client: httpx.Client, endpoint_url: str, es_url: str, index: str, request: HostileRequest) -> Verdict:
    """Send ``request`` to both; the class of the difference (see the module docstring)."""
    try:
        es: httpx.Response | None = _send(client, es_url, index, for_elasticsearch(request))
    except httpx.TransportError:  # Elasticsearch 9.2 drops the connection for a few header mixes
        es = None
    try:
        ours = _send(client, endpoint_url, index, request)
    except httpx.TimeoutException:
        return Verdict("hang", None, es.status_code if es is not None else None)
    if es is None:  # the endpoint relays what it got: no answer from upstream -> 503
        verdict = "es_no_answer" if ours.status_code == 503 else f"mismatch:{ours.status_code}/no answer"
        return Verdict(verdict, ours.status_code, None, ours.text[:300])
    if ours.status_code >= 500 and es.status_code < 500:
        return Verdict("own_5xx", ours.status_code, es.status_code, ours.text[:500])
    if ours.status_code == es.status_code:
        reranked = "x-hybridrank-ranker" in ours.headers
        if "_msearch" in request.path and _item_statuses(ours) != _item_statuses(es):
            kind = "window" if WINDOW_REASON in ours.text else f"mismatch:items {_item_statuses(ours)}/" \
                f"{_item_statuses(es)}"
            return Verdict(kind, ours.status_code, es.status_code, ours.text[:300], reranked)
        return Verdict("ok", ours.status_code, es.status_code, reranked=reranked)
    if ours.status_code == 400 and WINDOW_REASON in ours.text:
        return Verdict("window", ours.status_code, es.status_code)
    return Verdict(f"mismatch:{ours.status_code}/{es.status_code}", ours.status_code, es.status_code,
                   ours.text[:300] + " || " + es.text[:300])
