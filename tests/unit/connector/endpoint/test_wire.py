"""The wire helpers: Elasticsearch-shaped errors, media types, forwarded headers, NDJSON."""

from __future__ import annotations

import pytest

from connector.endpoint import wire


def test_es_error_shape() -> None:
    assert wire.es_error(400, "parse_exception", "bad", line=1) == {
        "error": {"root_cause": [{"type": "parse_exception", "reason": "bad", "line": 1}],
                  "type": "parse_exception", "reason": "bad", "line": 1},
        "status": 400,
    }


@pytest.mark.parametrize(("headers", "version", "media"), [
    ({"accept": "application/vnd.elasticsearch+json; compatible-with=9"}, 9,
     "application/vnd.elasticsearch+json;compatible-with=9"),
    ({"content-type": "application/vnd.elasticsearch+x-ndjson;compatible-with=8"}, 8,
     "application/vnd.elasticsearch+json;compatible-with=8"),
    ({"accept": "application/json"}, None, "application/json"),
    ({}, None, "application/json"),
])
def test_compatible_media_types(headers: dict[str, str], version: int | None, media: str) -> None:
    assert wire.compat_version(headers) == version
    assert wire.json_media_type(headers) == media


def test_upstream_media_types_keep_the_compat_level() -> None:
    asked = {"accept": "application/vnd.elasticsearch+json; compatible-with=8"}
    assert wire.upstream_media_types(asked, ndjson=True) == {
        "accept": "application/vnd.elasticsearch+json;compatible-with=8",
        "content-type": "application/vnd.elasticsearch+x-ndjson;compatible-with=8",
    }
    assert wire.upstream_media_types({}, ndjson=False)["content-type"] == "application/json"


def test_hop_by_hop_headers_are_dropped_and_auth_kept() -> None:
    headers = [("Authorization", "ApiKey abc"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"),
               ("Transfer-Encoding", "chunked"), ("Host", "me"), ("X-Opaque-Id", "o"), ("Warning", "a"),
               ("Warning", "b")]
    assert wire.forwardable_headers(headers) == [("Authorization", "ApiKey abc"), ("X-Opaque-Id", "o"),
                                                 ("Warning", "a"), ("Warning", "b")]


def test_ndjson_round_trip_and_errors() -> None:
    items = [{"index": "a"}, {"query": {"match_all": {}}}]
    raw = wire.join_ndjson(items)
    assert raw.endswith(b"\n") and wire.split_ndjson(raw + b"\n\n") == items
    with pytest.raises(ValueError, match="line 2"):
        wire.split_ndjson(b'{"index": "a"}\n{oops\n')


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", True), ("false", False),
                                                 ("0", False), (None, False)])
def test_truthy(value: str | None, expected: bool) -> None:
    assert wire.truthy(value) is expected


VND9 = "application/vnd.elasticsearch+json; compatible-with=9"


@pytest.mark.parametrize(("headers", "has_body", "ndjson", "ours"), [
    ({"content-type": "application/json"}, True, False, True),
    ({"content-type": "application/json; charset=UTF-8", "accept": "*/*"}, True, False, True),
    ({"content-type": VND9, "accept": VND9}, True, False, True),
    ({}, False, False, True),  # a GET without a body
    ({}, True, False, False),  # a body without Content-Type: Elasticsearch answers 406
    ({"content-type": "text/plain"}, True, False, False),
    ({"content-type": "application/yaml"}, True, False, False),
    ({"content-type": "application/json", "accept": "application/yaml"}, True, False, False),
    ({"content-type": "application/json", "accept": VND9}, True, False, False),  # levels must match
    ({"content-type": VND9.replace("9", "7"), "accept": VND9.replace("9", "7")}, True, False, False),
    ({"content-type": "application/x-ndjson"}, True, True, True),
    ({"content-type": "application/x-ndjson"}, True, False, False),
])
def test_media_types_the_endpoint_answers_itself(headers: dict[str, str], has_body: bool, ndjson: bool,
                                                 ours: bool) -> None:
    reason = wire.media_for_elasticsearch(headers, has_body=has_body, ndjson=ndjson)
    assert (reason is None) == ours, reason


def test_dumps_writes_what_orjson_cannot() -> None:
    assert wire.dumps({"n": 2**70, "s": "\ud800"}) == b'{"n":1180591620717411303424,"s":"\\ud800"}'
