"""The durable spool without a cluster (``tests.support.fake_events_cluster``): on disk first, replayed after a crash.

The rankers and interleaving tests at the end exercise ``connector.endpoint.serving`` and ``.app``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from connector.endpoint.serving import RankerHolder
from connector.events.schema import EVENTS_MAPPING, click_event_id
from connector.events.spool import EventLog
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate
from ltr.experiments.store import Variant
from ltr.experiments.team_draft import team_draft
from ltr.ranking import EsOrder, HybridOrder, Ranked, RrfOrder
from tests.support.fake_events_cluster import INDEX, NOW, FakeCluster, clicks, event_log


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
