"""The durable spool without a cluster (``tests.support.fake_events_cluster``): on disk first, replayed after a crash.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from connector.events.schema import EVENTS_MAPPING, click_event_id
from connector.events.spool import EventLog
from tests.support.fake_events_cluster import INDEX, FakeCluster, clicks, event_log


# -- the spool ------------------------------------------------------------------------------------
def test_append_is_durable_and_flush_stores_each_event_once(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    registry = CollectorRegistry()
    log = event_log(tmp_path, registry)
    log.append(clicks(7))
    open_segments = list(tmp_path.glob("events-*.jsonl.open"))
    assert len(open_segments) == 1 and len(open_segments[0].read_bytes().splitlines()) == 7
    assert log.backlog == 7
    result = log.flush_once()
    assert (result.stored, result.duplicates, result.rejected, result.error) == (7, 0, 0, None)
    assert cluster.mappings[INDEX] == EVENTS_MAPPING  # created with the events mapping
    assert sorted(cluster.docs) == sorted(click_event_id(f"r{i}", f"d{i}") for i in range(7))
    assert sum(1 for m, p in cluster.requests if p.endswith("/_bulk")) == 3  # batch_size 3
    assert not list(tmp_path.glob("events-*")) and log.backlog == 0
    log.append(clicks(2, start=6))  # one re-sent, one new
    again = log.flush_once()
    assert (again.stored, again.duplicates) == (1, 1)
    assert len(cluster.docs) == 8
    text = generate_latest(registry).decode()
    assert "hybridrank_events_stored_total 8.0" in text
    assert "hybridrank_events_duplicates_total 1.0" in text
    assert 'hybridrank_events_appended_total{type="click"} 9.0' in text
    assert "hybridrank_events_spool_backlog 0.0" in text


def test_a_dead_cluster_keeps_everything_and_a_restart_replays_it(tmp_path: Path,
                                                                   cluster: type[FakeCluster]) -> None:
    cluster.down = True
    log = event_log(tmp_path)
    log.append(clicks(4))
    log.append(clicks(3, start=4))
    failed = log.flush_once()
    assert failed.error and "ConnectionError" in failed.error
    assert failed.stored == 0 and failed.retained == 7
    assert log.backlog == 7 and len(list(tmp_path.glob("events-*.jsonl"))) == 1
    log.append(clicks(1, start=7))  # still accepting while the cluster is down
    log.close()
    cluster.down = False
    restarted = event_log(tmp_path)  # a new process over the same spool
    assert restarted.backlog == 8
    result = restarted.flush_once()
    assert (result.stored, result.duplicates, result.error) == (8, 0, None)
    assert len(cluster.docs) == 8 and not list(tmp_path.glob("events-*"))


def test_a_crashed_writers_open_segment_is_adopted_and_a_torn_line_reported(tmp_path: Path,
                                                                             cluster: type[FakeCluster]) -> None:
    orphan = tmp_path / "events-00000000000000000001-deadbeef.jsonl.open"
    lines = b"".join(json.dumps(e).encode() + b"\n" for e in clicks(2))
    orphan.write_bytes(lines + b'{"event_id": "torn", "ty')
    log = event_log(tmp_path)
    result = log.flush_once()
    assert result.stored == 2 and result.rejected == 1
    assert "unparsable" in next(tmp_path.glob("rejected-*.jsonl")).read_text()
    assert not orphan.exists()


def test_a_live_writers_open_segment_is_left_alone(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    writer = event_log(tmp_path)
    writer.append(clicks(1))  # holds the lock on its open segment
    other = event_log(tmp_path)
    assert other.flush_once().stored == 0
    assert len(list(tmp_path.glob("*.jsonl.open"))) == 1
    assert writer.flush_once().stored == 1


def test_shutdown_drains_the_impression_queue_into_the_spool(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    cluster.down = True

    async def run() -> EventLog:
        log = event_log(tmp_path)
        log.flush_interval_s = 30  # nothing drains by the timer: only shutdown can save these
        await log.start()
        for i in range(5):
            log.enqueue({"event_id": f"imp-{i}", "type": "impression", "hits": []})
        await log.aclose(final_flush_timeout_s=2)
        return log

    log = asyncio.run(run())
    assert log.queued == 0
    spooled = [json.loads(x) for p in tmp_path.glob("events-*.jsonl") for x in p.read_bytes().splitlines()]
    assert sorted(e["event_id"] for e in spooled) == [f"imp-{i}" for i in range(5)]
    cluster.down = False
    assert event_log(tmp_path).flush_once().stored == 5


def test_the_background_task_ships_queued_impressions(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    async def run() -> None:
        log = event_log(tmp_path)
        log.flush_interval_s = 0.05
        await log.start()
        log.enqueue({"event_id": "imp-x", "type": "impression", "hits": []})
        for _ in range(100):
            if "imp-x" in cluster.docs:
                break
            await asyncio.sleep(0.02)
        await log.aclose()

    asyncio.run(run())
    assert "imp-x" in cluster.docs
