"""Click intake: one object, an array or NDJSON in, completed clicks out; a bad body refused naming its line."""

from __future__ import annotations

import json

import pytest

from connector.endpoint.wire import RequestRejected
from connector.events.intake import parse_events
from connector.events.schema import click_event_id
from tests.support.fake_events_cluster import NOW


def test_one_object_array_and_ndjson_bodies_give_the_same_completed_clicks() -> None:
    one = parse_events(b'{"type": "click", "request_id": "r1", "doc_id": "d1"}', user_id="u1", now=NOW)
    assert one == [{"type": "click", "request_id": "r1", "doc_id": "d1", "user_id": "u1", "conversion": False,
                    "@timestamp": "2025-03-01T12:00:00.000+00:00", "event_id": click_event_id("r1", "d1")}]
    array = parse_events(b'[{"request_id": "r1", "doc_id": "d1", "user_id": "u1"}]', now=NOW)
    ndjson = parse_events(b'\n{"request_id": "r1", "doc_id": "d1"}\n', user_id="u1", now=NOW)
    assert array == ndjson == one


def test_explicit_fields_are_kept_and_a_conversion_has_its_own_id() -> None:
    (event,) = parse_events(json.dumps({"type": "conversion", "request_id": "r", "doc_id": 7, "dwell_ms": 1200,
                                        "@timestamp": 1_700_000_000_000, "session_id": "s"}).encode(), now=NOW)
    assert event["type"] == "click" and event["conversion"] is True and event["doc_id"] == "7"
    assert event["dwell_ms"] == 1200.0 and event["session_id"] == "s"
    assert event["@timestamp"].startswith("2023-11-14T22:13:20")
    assert event["event_id"] != click_event_id("r", "7") and event["event_id"].startswith("conversion-")
    (given,) = parse_events(b'{"request_id": "r", "doc_id": "d", "event_id": "mine"}')
    assert given["event_id"] == "mine"


@pytest.mark.parametrize(("body", "message"), [
    (b'{"request_id": "r1", "doc_id": "d"}\n{"request_id": "r2"}\n', "line 2: [doc_id] is required"),
    (b'[{"request_id": "r", "doc_id": "d"}, {"doc_id": "d"}]', "event 2: [request_id] is required"),
    (b'{"request_id": "r", "doc_id": "d", "type": "impression"}', 'event: [type] must be "click" or "conversion"'),
    (b'{"request_id": "r", "doc_id": "d", "dwell": 3}', "unknown field(s) ['dwell']"),
    (b'{"request_id": "r", "doc_id": "d", "dwell_ms": -1}', "[dwell_ms] must be a non-negative number"),
    (b'{"request_id": "r", "doc_id": "d", "conversion": "yes"}', "[conversion] must be true or false"),
    (b'{"request_id": "r", "doc_id": "d", "@timestamp": "yesterday"}', "[@timestamp]"),
    (b'{"request_id": "r", "doc_id": "d"}\n{oops\n', "line 2"),
    (b"   ", "request body is required"),
    (b"[]", "no events"),
    (b'{"request_id": true, "doc_id": "d"}', "[request_id] is required"),
    (b'{"request_id": "r", "doc_id": "' + b"x" * 513 + b'"}', "[doc_id] is 513 bytes long; at most 512"),
    (b'{"request_id": "r", "doc_id": "d", "event_id": "' + "\u00e9".encode() * 257 + b'"}', "[event_id] is 514 bytes"),
    (b'{"request_id": "r", "doc_id": "\\ud800"}', "[doc_id] is not valid UTF-8 text"),
    (b'{"request_id": "r", "doc_id": "d", "user_id": 5}', "[user_id] must be a non-empty string"),
    (b'{"request_id": "r", "doc_id": "d", "dwell_ms": 1e39}', "[dwell_ms] must be a non-negative number"),
    (b'{"request_id": "r", "doc_id": "d", "dwell_ms": NaN}', "[dwell_ms] must be a non-negative number"),
    (b'{"request_id": "r", "doc_id": "d", "@timestamp": true}', "[@timestamp] must be ISO-8601 text or epoch"),
    (b'{"request_id": "r", "doc_id": "d", "@timestamp": 1e20}', "[@timestamp]"),
    (b'[{"request_id": "r", "doc_id": "d"}, [1]]', "event 2: an event must be a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"\xff\xfe{", "neither JSON nor NDJSON"),
])
def test_bad_bodies_are_refused_naming_the_line(body: bytes, message: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_events(body)
    assert message in str(caught.value)
    assert caught.value.status == 400


def test_the_principal_is_the_endpoints_word_and_the_count_is_bounded() -> None:
    (event,) = parse_events(b'{"request_id": "r", "doc_id": "d"}', principal="clicker", now=NOW)
    assert event["principal"] == "clicker"
    (anonymous,) = parse_events(b'{"request_id": "r", "doc_id": "d"}', now=NOW)
    assert "principal" not in anonymous
    with pytest.raises(RequestRejected) as caught:
        parse_events(b'{"request_id": "r", "doc_id": "d"}\n' * 3, max_events=2)
    assert "too many events in one request: 3 > 2" in str(caught.value)
    with pytest.raises(RequestRejected, match="user_id"):  # the header's default is checked like the body
        parse_events(b'{"request_id": "r", "doc_id": "d"}', user_id="u" * 600)
