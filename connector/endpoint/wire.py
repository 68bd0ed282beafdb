"""The wire contract with apps: media types, Elasticsearch-shaped errors, headers, NDJSON.

Pure helpers, no I/O. An app's official Elasticsearch client must not notice it talks to us:

- every answer carries ``X-Elastic-Product: Elasticsearch`` (the client refuses a 2xx without it);
- a client asking ``application/vnd.elasticsearch+json; compatible-with=N`` gets that media type back;
- errors are ``{"error": {"root_cause": [...], "type": ..., "reason": ...}, "status": N}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from hybridrank.errors import HybridRankError

PRODUCT_HEADER = "X-Elastic-Product"
PRODUCT_VALUE = "Elasticsearch"
REQUEST_ID_HEADER = "X-Request-Id"
FALLBACK_HEADER = "X-Hybridrank-Fallback"
RANKER_HEADER = "X-Hybridrank-Ranker"
VARIANT_HEADER = "X-Hybridrank-Variant"
EXPLAIN_HEADER = "X-Hybridrank-Explain"
USER_HEADER = "X-Hybridrank-User"  # who searched: sticky A/B assignment, impressions
SESSION_HEADER = "X-Hybridrank-Session"
EXPERIMENT_HEADER = "X-Hybridrank-Experiment"  # response: "<experiment id>/<variant>"

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the proxy recomputes itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
_COMPAT_RE = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson)\s*;\s*compatible-with\s*=\s*(\d+)", re.I)


class RequestRejected(HybridRankError):
    """The endpoint refuses a request itself (before Elasticsearch sees it), with ES's error shape."""

    def __init__(self, reason: str, *, status: int = 400, error_type: str = "illegal_argument_exception") -> None:
        super().__init__(reason)
        self.status = status
        self.error_type = error_type


def es_error(status: int, error_type: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An error body exactly as Elasticsearch shapes one."""
    cause = {"type": error_type, "reason": reason, **extra}
    return {"error": {"root_cause": [dict(cause)], **cause}, "status": status}


def compat_version(headers: Mapping[str, str]) -> int | None:
    """The ``compatible-with`` version the client asked for in Accept (else Content-Type), if any."""
    for name in ("accept", "content-type"):
        match = _COMPAT_RE.search(headers.get(name, "") or "")
        if match:
            return int(match.group(2))
    return None


def json_media_type(headers: Mapping[str, str]) -> str:
    """The media type to answer a JSON body with: the vendor type echoed back, or plain JSON."""
    version = compat_version(headers)
    return f"application/vnd.elasticsearch+json;compatible-with={version}" if version else "application/json"


def upstream_media_types(headers: Mapping[str, str], *, ndjson: bool) -> dict[str, str]:
    """Accept/Content-Type for a request we make upstream on the client's behalf (same compat level)."""
    version = compat_version(headers)
    kind = "x-ndjson" if ndjson else "json"
    if version:
        content = f"application/vnd.elasticsearch+{kind};compatible-with={version}"
        return {"accept": f"application/vnd.elasticsearch+json;compatible-with={version}", "content-type": content}
    return {"accept": "application/json", "content-type": f"application/{kind}"}


def forwardable_headers(headers: Iterable[tuple[str, str]], *, drop: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Headers minus hop-by-hop ones (and those named by ``Connection``), ``host`` and ``drop``."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for key, value in pairs if key.lower() == "connection"
        for token in value.split(",")
    }
    dropped = HOP_BY_HOP | named | {"host"} | {d.lower() for d in drop}
    return [(k, v) for k, v in pairs if k.lower() not in dropped]


def dumps(body: Any) -> bytes:
    """Compact JSON, UTF-8, as Elasticsearch writes it (orjson: the endpoint's hottest encoder)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # an app's integer beyond 64 bits, a lone surrogate: the standard library
        return json.dumps(body, separators=(",", ":")).encode("ascii")  # escapes lone surrogates too


def split_ndjson(raw: bytes) -> list[Any]:
    """The JSON objects of an NDJSON body (blank lines skipped); ``ValueError`` on a bad line."""
    out: list[Any] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: {exc.msg}") from exc
    return out


def join_ndjson(items: Iterable[Any]) -> bytes:
    """NDJSON with the trailing newline Elasticsearch requires."""
    return b"".join(dumps(item) + b"\n" for item in items)


def truthy(value: str | None) -> bool:
    """Elasticsearch's reading of a boolean flag: present and not ``false``/``0``."""
    return value is not None and value.strip().lower() not in ("false", "0", "no", "off")


_JSON_BODY = re.compile(r"^\s*application/(json|vnd\.elasticsearch\+json)\s*(;.*)?$", re.I)
_NDJSON_BODY = re.compile(r"^\s*application/(json|x-ndjson|vnd\.elasticsearch\+(json|x-ndjson))\s*(;.*)?$", re.I)
_JSON_ANSWER = re.compile(r"^\s*(\*/\*|application/\*|application/(json|vnd\.elasticsearch\+json))\s*(;.*)?$", re.I)
_SUPPORTED_COMPAT = (8, 9)  # the compatible-with levels an Elasticsearch 9 accepts


def media_for_elasticsearch(headers: Mapping[str, str], *, has_body: bool, ndjson: bool = False) -> str | None:
    """Why Elasticsearch, not the endpoint, must judge this request's media types; None when they are
    plain JSON (NDJSON for ``_msearch``) that we read and answer alike.

    Elasticsearch refuses a body without a supported ``Content-Type`` (406), answers YAML, CBOR or
    Smile when asked, and requires one ``compatible-with`` level on both headers: such requests are
    relayed so the app gets Elasticsearch's own answer, not a reranked JSON one.
    """
    content_type = headers.get("content-type") or ""
    accept = headers.get("accept") or ""
    if has_body and not (_NDJSON_BODY if ndjson else _JSON_BODY).match(content_type):
        return f"Content-Type [{content_type}]"
    first = accept.split(",")[0]
    if accept and not _JSON_ANSWER.match(first):
        return f"Accept [{accept}]"
    levels = {_compat_level(value) for value in ((first, content_type) if has_body else (first,)) if value}
    if any(levels) and (len(levels) > 1 or levels.pop() not in _SUPPORTED_COMPAT):
        return "compatible-with levels differ or are not supported"
    return None


def _compat_level(media_type: str) -> int | None:
    match = _COMPAT_RE.search(media_type)
    return int(match.group(2)) if match else None
