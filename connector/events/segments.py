"""The spool's files: JSON-lines segments that sort by creation time, written durably, read back warily.

A segment is ``events-<ns>-<token>.jsonl.open`` while written (flock held by its writer), then
``events-<ns>-<token>.jsonl`` once sealed; names sort by creation time, so replay keeps event order.
Each event is one JSON line; a torn last line after a crash is reported by ``read_segment``, never
dropped silently, and a partly shipped segment is rewritten atomically with what is left.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

OPEN_SUFFIX = ".open"
SEGMENT_PREFIX = "events-"


def new_segment_name() -> str:
    """The file name of a segment opened now: creation time first, so names sort in event order."""
    return f"{SEGMENT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl{OPEN_SUFFIX}"


def sealed_path(open_path: Path) -> Path:
    """The name an open segment takes once sealed."""
    return open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)])


def encode_line(event: Mapping[str, Any]) -> bytes:
    """One event as a JSON line: orjson (every impression passes here; NaN and infinities become null, as
    Elasticsearch would refuse them), the standard library for what orjson refuses (an integer beyond
    64 bits, non-string keys...), as before."""
    try:
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        pass
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # a NaN slipped through: Elasticsearch would refuse it, write null instead
        text = json.dumps(_without_nan(event), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def _without_nan(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def read_segment(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(events, [(bad line, reason)]): a torn last line after a crash is reported, never dropped silently."""
    events: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                event = _loads(raw)
            except ValueError as exc:
                bad.append((raw.decode("utf-8", "replace")[:10_000], f"{path.name}:{number}: unparsable ({exc})"))
                continue
            if not isinstance(event, dict) or not event.get("event_id"):
                bad.append((raw.decode("utf-8", "replace")[:10_000], f"{path.name}:{number}: no event_id"))
                continue
            events.append(event)
    return events, bad


def _loads(raw: bytes) -> Any:
    """orjson, and the standard library for what it refuses (an integer beyond 64 bits): a line reads as before."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def count_lines(path: Path) -> int:
    """The events in a segment (its non-blank lines); 0 if it is gone."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def rewrite_segment(path: Path, events: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(b"".join(encode_line(ev) for ev in events))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
