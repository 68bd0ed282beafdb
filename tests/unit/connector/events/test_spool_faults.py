"""The spool when its disk fails: a failed append leaves nothing behind and acknowledges nothing.

The disk is faulted at the system call the spool writes through (``os.write``/``os.fsync`` refuse
with ENOSPC or EIO, after a partial write), for the spool's own file descriptor only.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.testclient import TestClient

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.events.schema import click_event_id
from connector.events.segments import read_segment
from tests.support.fake_events_cluster import FakeCluster, clicks, event_log


class FullDisk:
    """``os.write`` on segment files writes ``partial`` bytes, then fails with ``error`` (while ``full``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, spool: Path, *, partial: int = 17,
                 error: int = errno.ENOSPC) -> None:
        self.full = False
        self.partial = partial
        self.error = error
        self.spool = spool
        real_write: Callable[[int, bytes], int] = os.write

        def write(fd: int, data: bytes) -> int:
            if self.full and self._ours(fd):
                if self.partial:
                    written = real_write(fd, bytes(data[: self.partial]))
                    self.partial = 0  # the next call (the rest of the payload) fails outright
                    return written
                raise OSError(self.error, os.strerror(self.error))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)

    def _ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(str(self.spool))
        except OSError:
            return False


def test_a_failed_append_is_cut_off_so_the_next_acknowledged_event_survives(
        tmp_path: Path, cluster: type[FakeCluster], monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch, tmp_path)
    log = event_log(tmp_path)
    log.append(clicks(2))  # acknowledged
    disk.full = True
    with pytest.raises(OSError) as caught:
        log.append(clicks(3, start=2))  # 17 bytes reach the file, then ENOSPC: not acknowledged
    assert caught.value.errno == errno.ENOSPC
    disk.full = False
    log.append(clicks(1, start=5))  # acknowledged after the disk has room again
    (segment,) = tmp_path.glob("events-*.jsonl.open")
    events, bad = read_segment(segment)
    assert bad == []  # no torn line glued to the next event
    assert [e["request_id"] for e in events] == ["r0", "r1", "r5"]
    assert log.backlog == 3
    result = log.flush_once()
    assert (result.stored, result.rejected, result.error) == (3, 0, None)
    assert sorted(cluster.docs) == sorted(click_event_id(f"r{i}", f"d{i}") for i in (0, 1, 5))


def test_a_failed_fsync_acknowledges_nothing_and_leaves_nothing(
        tmp_path: Path, cluster: type[FakeCluster], monkeypatch: pytest.MonkeyPatch) -> None:
    log = event_log(tmp_path)
    log.append(clicks(1))
    real_fsync = os.fsync
    failing = {"on": True}

    def fsync(fd: int) -> None:
        if failing["on"] and os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl.open"):
            failing["on"] = False
            raise OSError(errno.EIO, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        log.append(clicks(2, start=1))
    (segment,) = tmp_path.glob("events-*.jsonl.open")
    assert [e["request_id"] for e in read_segment(segment)[0]] == ["r0"]
    assert log.flush_once().stored == 1


def test_impressions_wait_in_a_bounded_queue_while_the_disk_is_full(
        tmp_path: Path, cluster: type[FakeCluster], monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    log = event_log(tmp_path, registry)
    log.max_queued = 4
    disk = FullDisk(monkeypatch, tmp_path, partial=0)
    disk.full = True
    for event in clicks(6):
        log.enqueue(event)
    assert log.queued == 4  # two dropped, counted
    with pytest.raises(OSError):
        log.drain()
    assert log.queued == 4  # kept in memory for the next drain
    disk.full = False
    assert log.drain() == 4
    assert 'hybridrank_events_dropped_total{type="click"} 2.0' in generate_latest(registry).decode()


@pytest.fixture()
def endpoint_client(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    from hybridrank.config import FeedbackConfig, Settings

    spool = tmp_path / "spool"
    settings = Settings(home=tmp_path, feedback=FeedbackConfig(spool_dir=spool, flush_interval_s=60))
    endpoint = Endpoint(settings, holder=RankerHolder({}), warm_up=False)
    with TestClient(endpoint.app, base_url="http://endpoint") as client:
        yield client, spool


def test_the_events_route_answers_503_with_retry_after_while_the_disk_is_full(
        endpoint_client: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    client, spool = endpoint_client
    disk = FullDisk(monkeypatch, spool)
    disk.full = True
    refused = client.post("/_hybridrank/events", json=[{"request_id": "r1", "doc_id": "d1"},
                                                       {"request_id": "r1", "doc_id": "d2"}])
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-elastic-product"] == "Elasticsearch"
    error = refused.json()["error"]
    assert error["type"] == "spool_write_exception" and "No space left" in error["reason"]
    assert error["root_cause"][0]["type"] == "spool_write_exception"
    disk.full = False
    accepted = client.post("/_hybridrank/events", json={"request_id": "r1", "doc_id": "d1"})
    assert accepted.status_code == 202
    lines = [e for p in spool.glob("events-*") for e in read_segment(p)[0]]
    assert [(e["request_id"], e["doc_id"]) for e in lines] == [("r1", "d1")]
