"""The spool's files: names that sort by creation time, NaN written as null, unreadable lines reported."""

from __future__ import annotations

import json
import math
from pathlib import Path

from connector.events.segments import (
    OPEN_SUFFIX,
    count_lines,
    encode_line,
    new_segment_name,
    read_segment,
    rewrite_segment,
    sealed_path,
)


def test_names_sort_by_creation_and_seal_without_the_open_suffix(tmp_path: Path) -> None:
    names = [new_segment_name() for _ in range(3)]
    assert names == sorted(names) and len(set(names)) == 3
    assert all(n.startswith("events-") and n.endswith(OPEN_SUFFIX) for n in names)
    assert sealed_path(tmp_path / names[0]) == tmp_path / names[0].removesuffix(OPEN_SUFFIX)


def test_a_nan_is_written_as_null() -> None:
    line = encode_line({"event_id": "e", "hits": [{"features": [1.0, math.nan]}], "dwell_ms": math.inf})
    assert line.endswith(b"\n")
    assert json.loads(line) == {"event_id": "e", "hits": [{"features": [1.0, None]}], "dwell_ms": None}


def test_read_rewrite_and_count(tmp_path: Path) -> None:
    path = tmp_path / "events-1.jsonl"
    path.write_bytes(encode_line({"event_id": "a"}) + b"\n" + b'{"type": "click"}\n' + b'{"event_id": "b", "ty')
    events, bad = read_segment(path)
    assert events == [{"event_id": "a"}]
    assert bad[0][1] == "events-1.jsonl:3: no event_id"
    assert bad[1][1].startswith("events-1.jsonl:4: unparsable") and bad[1][0].startswith('{"event_id": "b"')
    assert count_lines(path) == 3
    rewrite_segment(path, [{"event_id": "c"}, {"event_id": "d"}])
    assert read_segment(path) == ([{"event_id": "c"}, {"event_id": "d"}], [])
    assert count_lines(tmp_path / "gone.jsonl") == 0


def test_lines_orjson_refuses_are_written_and_read_as_before(tmp_path: Path) -> None:
    """orjson writes and reads the spool; an integer beyond 64 bits or a non-string key takes the
    standard library, as every line did before."""
    big = {"event_id": "big", "dwell_ms": 2**70, 3: "three"}
    line = encode_line(big)
    assert line == json.dumps(big, separators=(",", ":")).encode() + b"\n"
    event = {"event_id": "é", "query": "naïve – ü", "hits": [{"features": [0.1, -0.0, 1e-7, None]}]}
    path = tmp_path / "events-2.jsonl"
    path.write_bytes(encode_line(event) + line)
    events, bad = read_segment(path)
    assert bad == [] and events == [event, {"event_id": "big", "dwell_ms": 2**70, "3": "three"}]
    assert "é".encode() in encode_line(event)  # UTF-8 as written, not escaped
