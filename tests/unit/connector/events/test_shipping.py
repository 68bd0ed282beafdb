"""Shipping without a cluster (``tests.support.fake_events_cluster``): 503s retried, 400s dead-lettered, one shipper."""

from __future__ import annotations

import fcntl
import json
import threading
from pathlib import Path

import pytest

from tests.support.fake_events_cluster import FakeCluster, clicks, event_log


def test_items_answered_503_stay_spooled_the_others_are_not_resent(tmp_path: Path,
                                                                    cluster: type[FakeCluster]) -> None:
    events = clicks(5)
    cluster.failing_ids = {events[1]["event_id"], events[3]["event_id"]}
    log = event_log(tmp_path)
    log.append(events)
    first = log.flush_once()
    assert first.stored == 3 and first.retained == 2 and first.error and "503" in first.error
    (segment,) = tmp_path.glob("events-*.jsonl")
    kept = [json.loads(x)["event_id"] for x in segment.read_bytes().splitlines()]
    assert kept == [events[1]["event_id"], events[3]["event_id"]]
    cluster.failing_ids = set()
    second = log.flush_once()
    assert (second.stored, second.duplicates, second.error) == (2, 0, None)
    assert len(cluster.docs) == 5


def test_a_rejected_event_is_dead_lettered_not_dropped(tmp_path: Path, cluster: type[FakeCluster],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    log = event_log(tmp_path)
    log.append([*clicks(2), {"event_id": "bad-1", "type": "click", "poison": 1}])
    result = log.flush_once()
    assert (result.stored, result.rejected, result.error) == (2, 1, None)
    (dead,) = tmp_path.glob("rejected-*.jsonl")
    entry = json.loads(dead.read_text())
    assert entry["event"]["event_id"] == "bad-1" and "document_parsing_exception" in entry["reason"]
    assert "dead-lettered" in caplog.text
    assert not list(tmp_path.glob("events-*"))


def test_a_flush_can_wait_for_another_shipper_to_finish(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    log = event_log(tmp_path)
    log.append(clicks(3))
    with open(tmp_path / "ship.lock", "a") as other:  # another process shipping this spool
        fcntl.flock(other, fcntl.LOCK_EX)
        busy = log.flush_once()
        assert busy.stored == 0 and busy.error and "another process" in busy.error
        releaser = threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN))
        releaser.start()
        waited = log.flush_once(wait_s=10)
        releaser.join()
    assert waited.error is None and waited.stored == 3 and log.backlog == 0
