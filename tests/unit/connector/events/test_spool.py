"""The event pipeline without a cluster: validation, the durable spool, shipping faked at the transport.

``FakeCluster`` is an in-memory Elasticsearch behind the official client's ``node_class`` hook: it
keeps documents by ``_id``, answers ``op_type=create`` with 201 or 409, rejects a document carrying
``poison`` with a 400 mapping error, and can be "down" (connection refused) or answer 503 per item.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch
from prometheus_client import CollectorRegistry, generate_latest

from connector.endpoint.serving import RankerHolder
from connector.endpoint.wire import RequestRejected
from connector.events.spool import EventLog, finite_list, impression_event_id, parse_events
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate
from ltr.clicks.impressions import EVENTS_MAPPING, click_event_id
from ltr.experiments.store import Variant, team_draft
from ltr.ranking import EsOrder, HybridOrder, Ranked, RrfOrder

INDEX = "events-test"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeCluster(BaseNode):
    docs: ClassVar[dict[str, dict[str, Any]]] = {}
    mappings: ClassVar[dict[str, Any]] = {}
    down: ClassVar[bool] = False
    failing_ids: ClassVar[set[str]] = set()  # answered 503 per item
    requests: ClassVar[list[tuple[str, str]]] = []

    @classmethod
    def reset(cls) -> None:
        cls.docs, cls.mappings, cls.down, cls.failing_ids, cls.requests = {}, {}, False, set(), []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        path = target.split("?", 1)[0]
        FakeCluster.requests.append((method, path))
        if FakeCluster.down:
            raise TransportConnectionError("connection refused")
        if method == "HEAD":
            return self._answer(200 if path.strip("/") in FakeCluster.mappings else 404, None)
        if method == "PUT" and not path.endswith("/_bulk"):
            FakeCluster.mappings[path.strip("/")] = json.loads(body or b"{}").get("mappings")
            return self._answer(200, {"acknowledged": True})
        if method in ("POST", "PUT") and path.endswith("/_bulk"):
            lines = [json.loads(x) for x in (body or b"").split(b"\n") if x.strip()]
            items = []
            for action, doc in zip(lines[0::2], lines[1::2], strict=True):
                meta = action["create"]
                doc_id = meta["_id"]
                if doc_id in FakeCluster.failing_ids:
                    items.append({"create": {"_id": doc_id, "status": 503,
                                             "error": {"type": "unavailable_shards_exception", "reason": "busy"}}})
                elif "poison" in doc:
                    items.append({"create": {"_id": doc_id, "status": 400,
                                             "error": {"type": "document_parsing_exception",
                                                       "reason": "failed to parse field [poison]"}}})
                elif doc_id in FakeCluster.docs:
                    items.append({"create": {"_id": doc_id, "status": 409,
                                             "error": {"type": "version_conflict_engine_exception",
                                                       "reason": "document already exists"}}})
                else:
                    FakeCluster.docs[doc_id] = doc
                    items.append({"create": {"_id": doc_id, "status": 201, "result": "created"}})
            errors = any(i["create"]["status"] >= 300 for i in items)
            return self._answer(200, {"took": 1, "errors": errors, "items": items})
        return self._answer(404, {"error": {"type": "not_found", "reason": path}, "status": 404})

    def _answer(self, status: int, payload: Any) -> NodeApiResponse:
        headers = HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"})
        meta = ApiResponseMeta(status=status, http_version="1.1", headers=headers, duration=0.0, node=self.config)
        return NodeApiResponse(meta, b"" if payload is None else json.dumps(payload).encode())

    def close(self) -> None:
        pass


@pytest.fixture()
def cluster() -> type[FakeCluster]:
    FakeCluster.reset()
    return FakeCluster


def _log(spool: Path, registry: CollectorRegistry | None = None) -> EventLog:
    return EventLog(spool, INDEX, client_factory=lambda: Elasticsearch("http://fake:9200", node_class=FakeCluster,
                                                                       max_retries=0),
                    batch_size=3, registry=registry)


def _clicks(n: int, start: int = 0) -> list[dict[str, Any]]:
    return parse_events(json.dumps([{"request_id": f"r{i}", "doc_id": f"d{i}"} for i in range(start, start + n)])
                        .encode(), now=NOW)


# -- validation -----------------------------------------------------------------------------------
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
])
def test_bad_bodies_are_refused_naming_the_line(body: bytes, message: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_events(body)
    assert message in str(caught.value)
    assert caught.value.status == 400


def test_ids_are_deterministic() -> None:
    assert click_event_id("r", "d") == click_event_id("r", "d") != click_event_id("r", "e")
    assert impression_event_id("r1") == impression_event_id("r1") != impression_event_id("r2")
    assert finite_list(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]


# -- the spool ------------------------------------------------------------------------------------
def test_append_is_durable_and_flush_stores_each_event_once(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    registry = CollectorRegistry()
    log = _log(tmp_path, registry)
    log.append(_clicks(7))
    open_segments = list(tmp_path.glob("events-*.jsonl.open"))
    assert len(open_segments) == 1 and len(open_segments[0].read_bytes().splitlines()) == 7
    assert log.backlog == 7
    result = log.flush_once()
    assert (result.stored, result.duplicates, result.rejected, result.error) == (7, 0, 0, None)
    assert cluster.mappings[INDEX] == EVENTS_MAPPING  # created with the events mapping
    assert sorted(cluster.docs) == sorted(click_event_id(f"r{i}", f"d{i}") for i in range(7))
    assert sum(1 for m, p in cluster.requests if p.endswith("/_bulk")) == 3  # batch_size 3
    assert not list(tmp_path.glob("events-*")) and log.backlog == 0
    log.append(_clicks(2, start=6))  # one re-sent, one new
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
    log = _log(tmp_path)
    log.append(_clicks(4))
    log.append(_clicks(3, start=4))
    failed = log.flush_once()
    assert failed.error and "ConnectionError" in failed.error
    assert failed.stored == 0 and failed.retained == 7
    assert log.backlog == 7 and len(list(tmp_path.glob("events-*.jsonl"))) == 1
    log.append(_clicks(1, start=7))  # still accepting while the cluster is down
    log.close()
    cluster.down = False
    restarted = _log(tmp_path)  # a new process over the same spool
    assert restarted.backlog == 8
    result = restarted.flush_once()
    assert (result.stored, result.duplicates, result.error) == (8, 0, None)
    assert len(cluster.docs) == 8 and not list(tmp_path.glob("events-*"))


def test_items_answered_503_stay_spooled_the_others_are_not_resent(tmp_path: Path,
                                                                    cluster: type[FakeCluster]) -> None:
    events = _clicks(5)
    cluster.failing_ids = {events[1]["event_id"], events[3]["event_id"]}
    log = _log(tmp_path)
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
    log = _log(tmp_path)
    log.append([*_clicks(2), {"event_id": "bad-1", "type": "click", "poison": 1}])
    result = log.flush_once()
    assert (result.stored, result.rejected, result.error) == (2, 1, None)
    (dead,) = tmp_path.glob("rejected-*.jsonl")
    entry = json.loads(dead.read_text())
    assert entry["event"]["event_id"] == "bad-1" and "document_parsing_exception" in entry["reason"]
    assert "dead-lettered" in caplog.text
    assert not list(tmp_path.glob("events-*"))


def test_a_crashed_writers_open_segment_is_adopted_and_a_torn_line_reported(tmp_path: Path,
                                                                             cluster: type[FakeCluster]) -> None:
    orphan = tmp_path / "events-00000000000000000001-deadbeef.jsonl.open"
    lines = b"".join(json.dumps(e).encode() + b"\n" for e in _clicks(2))
    orphan.write_bytes(lines + b'{"event_id": "torn", "ty')
    log = _log(tmp_path)
    result = log.flush_once()
    assert result.stored == 2 and result.rejected == 1
    assert "unparsable" in next(tmp_path.glob("rejected-*.jsonl")).read_text()
    assert not orphan.exists()


def test_a_live_writers_open_segment_is_left_alone(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    writer = _log(tmp_path)
    writer.append(_clicks(1))  # holds the lock on its open segment
    other = _log(tmp_path)
    assert other.flush_once().stored == 0
    assert len(list(tmp_path.glob("*.jsonl.open"))) == 1
    assert writer.flush_once().stored == 1


def test_a_flush_can_wait_for_another_shipper_to_finish(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    log = _log(tmp_path)
    log.append(_clicks(3))
    with open(tmp_path / "ship.lock", "a") as other:  # another process shipping this spool
        fcntl.flock(other, fcntl.LOCK_EX)
        busy = log.flush_once()
        assert busy.stored == 0 and busy.error and "another process" in busy.error
        releaser = threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN))
        releaser.start()
        waited = log.flush_once(wait_s=10)
        releaser.join()
    assert waited.error is None and waited.stored == 3 and log.backlog == 0


def test_shutdown_drains_the_impression_queue_into_the_spool(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    cluster.down = True

    async def run() -> EventLog:
        log = _log(tmp_path)
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
    assert _log(tmp_path).flush_once().stored == 5


def test_the_background_task_ships_queued_impressions(tmp_path: Path, cluster: type[FakeCluster]) -> None:
    async def run() -> None:
        log = _log(tmp_path)
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


# -- rankers and interleaving -----------------------------------------------------------------------
def _cands() -> list[Candidate]:
    return [Candidate("a", leg_scores={LEXICAL: 3.0}, leg_ranks={LEXICAL: 2}),
            Candidate("b", leg_scores={LEXICAL: 5.0, DENSE: 0.5}, leg_ranks={LEXICAL: 1, DENSE: 2}),
            Candidate("c", leg_scores={DENSE: 0.9}, leg_ranks={DENSE: 1}),
            Candidate("d", leg_scores={DENSE: 0.1}, leg_ranks={DENSE: 3})]


def test_es_order_is_the_lexical_order_then_knn_only_docs() -> None:
    ranked = EsOrder().rerank("i", "q", None, _cands(), NOW)
    assert [c.doc_id for c in ranked.candidates] == ["b", "a", "c", "d"]
    assert ranked.scores == [5.0, 3.0, 0.0, 0.0] and ranked.ranker == "es"
    rrf = RrfOrder({}).rerank("i", "q", None, _cands(), NOW)
    assert rrf.candidates[0].doc_id == "b"


def test_holder_resolves_ranker_specs_and_caches_models() -> None:
    loads: list[str] = []

    class Fixed:
        blocking = False

        def __init__(self, model_id: str) -> None:
            self.name = f"model:{model_id}"

    def load(index: str, model_id: str) -> Any:
        loads.append(model_id)
        if model_id == "broken":
            raise ValueError("corrupt")
        return Fixed(model_id)

    holder = RankerHolder({}, resolver=lambda i, v: {"default": "m1", "b": "m2"}.get(v), loader=load)
    assert isinstance(holder.get("i", "es")[0], EsOrder)
    assert isinstance(holder.get("i", "rrf")[0], RrfOrder)
    assert isinstance(holder.get("i", "hybrid")[0], HybridOrder)
    assert holder.get("i", "model:m9")[0].name == "model:m9"
    assert holder.get("i", "model:m9")[0].name == "model:m9"
    assert holder.get("i", "variant:b")[0].name == "model:m2"
    assert holder.get("i", None)[0].name == "model:m1"
    ranker, fallback = holder.get("i", "model:broken")
    assert isinstance(ranker, HybridOrder) and fallback and "model-load-failed: broken" in fallback
    assert loads == ["m9", "m2", "m1", "broken"]  # each loaded once
    assert not holder.needs_thread("i", "model:m9") and holder.needs_thread("i", "model:new")


def test_an_experiment_goes_live_once_its_models_are_loaded(tmp_path: Path) -> None:
    """No search waits for a model load: the endpoint keeps the previous experiment state while a
    background thread loads the new experiment's models, then switches."""
    import threading
    import time

    from connector.endpoint.app import Endpoint
    from hybridrank.config import IndexConfig, Settings
    from ltr.experiments.store import Experiment, ExperimentStore

    release, loads = threading.Event(), []

    class Fixed:
        blocking = False
        name = "model:m1"

    def load(index: str, model_id: str) -> Any:
        loads.append(model_id)
        assert release.wait(10)
        return Fixed()

    settings = Settings(home=tmp_path, indices={"docs": IndexConfig()})
    holder = RankerHolder(settings.indices, resolver=lambda i, v: None, loader=load)
    endpoint = Endpoint(settings, holder=holder, warm_up=False, experiments_check_s=0.0)
    store = ExperimentStore(settings.experiments_file)
    store.create(Experiment("exp-m", "docs", "ab", (Variant("a", "es"), Variant("b", "model:m1")), salt="s"))
    assert endpoint.experiments.running("docs") is None  # m1 is loading: the experiment is not live yet
    assert endpoint.experiments.running("docs") is None and loads == ["m1"]  # one loader, no search blocked
    release.set()
    deadline = time.monotonic() + 10
    while endpoint.experiments.running("docs") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    live = endpoint.experiments.running("docs")
    assert live is not None and live.id == "exp-m" and holder.describe()["docs/model:m1"]["model"] == "m1"
    # stopping, and experiments of fixed rankers only, apply at once
    store.stop("exp-m")
    assert endpoint.experiments.running("docs") is None
    store.create(Experiment("exp-f", "docs", "ab", (Variant("a", "es"), Variant("b", "rrf")), salt="s"))
    fixed = endpoint.experiments.running("docs")
    assert fixed is not None and fixed.id == "exp-f" and loads == ["m1"]


def test_holder_reloads_models_when_the_click_statistics_change(tmp_path: Path) -> None:
    """A model's pipeline reads the click statistics at load: a new aggregate reloads it, a registry
    change alone reuses the loaded model."""
    import os

    loads: list[str] = []

    class Fixed:
        blocking = False
        name = "model:m1"

    def load(index: str, model_id: str) -> Any:
        loads.append(model_id)
        return Fixed()

    stats, registry = tmp_path / "idx.json", tmp_path / "registry.json"
    registry.write_text("{}")
    holder = RankerHolder({}, resolver=lambda i, v: "m1", loader=load, registry_file=registry,
                          check_interval_s=0.0, watched_files=[stats])
    holder.get("idx", None)
    holder.get("idx", None)
    assert loads == ["m1"]
    stats.write_text("{}")  # `hybridrank clicks aggregate` wrote the statistics
    holder.get("idx", None)
    assert loads == ["m1", "m1"]
    os.utime(registry, ns=(1, 1))  # a promotion that leaves this slot's model as it was
    holder.get("idx", None)
    assert loads == ["m1", "m1"]
    stats.unlink()  # removed statistics count as a change too
    holder.get("idx", None)
    assert loads == ["m1", "m1", "m1"]


def test_interleaved_ranking_is_the_team_draft_merge_with_features_and_teams() -> None:
    from connector.endpoint.assignment import interleave

    cands = _cands()
    a = Ranked(cands, [4.0, 3.0, 2.0, 1.0], ranker="model:m1", model_id="m1", feature_names=["f"],
               features=np.array([[0.0], [1.0], [2.0], [np.nan]]))
    b = Ranked(list(reversed(cands)), [4.0, 3.0, 2.0, 1.0], ranker="hybrid")
    merged = interleave(a, b, Variant("control", "model:m1"), Variant("new", "hybrid"), seed="rid-1", length=3)
    ids, teams = team_draft(["a", "b", "c", "d"], ["d", "c", "b", "a"], seed="rid-1", length=3)
    assert [c.doc_id for c in merged.candidates] == ids and merged.teams == teams
    assert merged.scores == [3.0, 2.0, 1.0]
    assert merged.features is not None
    rows = {"a": 0.0, "b": 1.0, "c": 2.0}
    for cand, row in zip(merged.candidates, merged.features, strict=True):
        if cand.doc_id == "d":
            assert np.isnan(row[0])
        else:
            assert row[0] == rows[cand.doc_id]
    assert merged.team_rankers == {"A": {"variant": "control", "ranker": "model:m1", "model_id": "m1"},
                                   "B": {"variant": "new", "ranker": "hybrid", "model_id": None}}
