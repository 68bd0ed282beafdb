"""The impression of every reranked search, logged off the request path, never lost.

``impression_event`` is the event (schema: ``connector.events.schema``): who searched what, which
experiment and ranker answered, and each shown hit with its position, team and feature row.
``Impressions.log`` queues it on the event log (``connector.events.spool``). When the ranker computed no
features (fusion orders) and ``feedback.log_features`` is on, the index's feature snapshot — the code
the models are served with — is computed after the response and the impression is logged with it;
if that fails, the impression is logged without it. Shutdown waits a bounded time for that work.
The snapshot's search carries the searching app's credentials, as the search itself did: it may
read only what the app may read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from anyio import to_thread

from connector.credentials import Credentials, on_behalf_of
from connector.endpoint import dsl
from connector.endpoint.assignment import Assignment
from connector.endpoint.outcome import Outcome
from connector.events.schema import IMPRESSION, finite_list, impression_event_id
from connector.events.spool import EventLog
from hybridrank.config import IndexConfig, Settings
from ltr.ranking import Ranked

log = logging.getLogger("hybridrank.serve")
_SHUTDOWN_WAIT_S = 10.0  # snapshots still computing at shutdown: then logged without them


def impression_event(plan: dsl.SearchPlan, ranked: Ranked, shown: Sequence[int], outcome: Outcome,
                     assignment: Assignment) -> dict[str, Any]:
    """The impression event of one reranked search (schema: ``connector.events.schema``)."""
    hits = []
    for position, i in enumerate(shown, start=plan.from_ + 1):
        row = ranked.features[i] if ranked.features is not None else None
        hit: dict[str, Any] = {"doc_id": ranked.candidates[i].doc_id, "position": position,
                               "team": ranked.teams[i] if ranked.teams is not None else None,
                               "features": None if row is None else finite_list(row)}
        if ranked.teams is not None:  # inside the rankings' shared prefix: its click credits a team at random
            hit["shared"] = i < ranked.shared_prefix
        hits.append(hit)
    experiment = assignment.experiment
    event: dict[str, Any] = {
        "event_id": impression_event_id(assignment.request_id),
        "type": IMPRESSION,
        "@timestamp": outcome.request_time.isoformat(timespec="milliseconds"),
        "request_id": assignment.request_id,
        "user_id": outcome.user_id,
        "session_id": outcome.session_id,
        "index": plan.index,
        "query": plan.query_text,
        "experiment": experiment.id if experiment else None,
        "variant": assignment.variant.name if assignment.variant else assignment.explicit_variant,
        "ranker": ranked.ranker,
        "model_id": ranked.model_id,
        "feature_names": ranked.feature_names if ranked.features is not None else None,
        "hits": hits,
    }
    if ranked.team_rankers is not None:
        event["teams"] = ranked.team_rankers
    if ranked.fallback:
        event["fallback"] = ranked.fallback
    return event


class Impressions:
    """Logs impressions on ``events``; owns the post-response snapshot work and what it needs per index."""

    def __init__(self, settings: Settings, profiles: Mapping[str, IndexConfig], events: EventLog, *,
                 caller_client: Callable[[], Any]) -> None:
        self.settings = settings
        self.profiles = profiles
        self.events = events
        self.caller_client = caller_client  # the client without an identity of its own (``EndpointState``)
        self._pending: set[asyncio.Task[None]] = set()  # post-response work (feature snapshots)
        self._pipelines: dict[str, Any] = {}

    @property
    def pending(self) -> int:
        """Feature snapshots still being computed after their responses (their impressions are not queued yet)."""
        return len(self._pending)

    def log(self, plan: dsl.SearchPlan, ranked: Ranked, shown: Sequence[int], outcome: Outcome,
            assignment: Assignment, vector: np.ndarray, credentials: Credentials) -> None:
        """Log the impression of the hits at window positions ``shown`` (if ``feedback.log_impressions``);
        a feature snapshot is fetched with ``credentials`` (the searching app's)."""
        if not self.settings.feedback.log_impressions:
            return
        if ranked.features is None and self.settings.feedback.log_features:
            self._later(self._snapshot_then_log(plan, ranked, shown, outcome, assignment, vector, credentials))
        else:
            self.events.enqueue(impression_event(plan, ranked, shown, outcome, assignment))

    async def drain(self) -> None:
        """At shutdown: wait a bounded time for the snapshots, then cancel them (their impressions are
        still queued, without the snapshot)."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=_SHUTDOWN_WAIT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the response; shutdown waits for it (``drain``)."""
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _snapshot_then_log(self, plan: dsl.SearchPlan, ranked: Ranked, shown: Sequence[int],
                                 outcome: Outcome, assignment: Assignment, vector: np.ndarray,
                                 credentials: Credentials) -> None:
        """Log the impression with the index's feature snapshot (the code the models are served with),
        computed after the response; if that fails, the impression is logged without it, never lost."""
        try:
            # in a worker thread: the first call per index builds the pipeline (reads the click statistics)
            pipeline = await to_thread.run_sync(self._pipeline, plan.index)
            client = on_behalf_of(self.caller_client(), credentials)
            matrix = await to_thread.run_sync(
                lambda: pipeline.compute(client, plan.index, plan.query_text, vector,
                                         ranked.candidates, request_time=outcome.request_time))
            ranked = replace(ranked, feature_names=list(pipeline.names), features=matrix)
        except Exception as exc:
            log.warning("feature snapshot failed; impression logged without it",
                        extra={"index": plan.index, "reason": f"{type(exc).__name__}: {exc}"})
        finally:  # also when cancelled at shutdown
            self.events.enqueue(impression_event(plan, ranked, shown, outcome, assignment))

    def _pipeline(self, index: str) -> Any:
        pipeline = self._pipelines.get(index)
        if pipeline is None:
            from features.pipeline import FeaturePipeline
            from ltr.clicks.click_model import load_click_stats

            pipeline = FeaturePipeline.from_config(self.profiles[index],
                                                   click_stats=load_click_stats(self.settings, index))
            self._pipelines[index] = pipeline
        return pipeline
