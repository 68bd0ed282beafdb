"""The feedback loop in one process: the endpoint, experiments, simulated users, and their events.

``FeedbackLoop`` runs ``hybridrank serve``'s endpoint in a background thread, lets the caller start
experiments on one index, drives it with the simulator (the users of ``feedback.click_model``, or the
model a caller names; ``ltr.clicks.user_models``) and
reads the impressions and clicks back from the events index once the endpoint's event log has
shipped them. The demo and bench/bench_feedback_loop.py use it; nothing here is a shortcut around
the real path: searches go through the official client to the endpoint, clicks through
``POST /_hybridrank/events``, events through the spool to Elasticsearch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ltr.experiments.store import Experiment, ExperimentStore, Mode, Variant

if TYPE_CHECKING:
    from connector.embedding.embedder import Embedder
    from hybridrank.config import Settings
    from ltr.clicks.impressions import Impression
    from ltr.clicks.simulated_users import FreshnessPreference
    from ltr.clicks.simulator import SimulationReport
    from ltr.evaluation.datasets import Collection


class FeedbackLoop:
    """``with FeedbackLoop(settings, index, collection, embedder) as loop: loop.experiment(...); loop.simulate(...)``"""

    def __init__(self, settings: Settings, index: str, collection: Collection, embedder: Embedder) -> None:
        from connector.client import make_client
        from connector.endpoint.app import Endpoint
        from connector.endpoint.thread import ServerThread

        self.settings = settings
        self.index = index
        self.collection = collection
        self.store = ExperimentStore.from_settings(settings)
        self.endpoint = Endpoint(settings, embedder=embedder, experiments_check_s=0.2)
        self.server = ServerThread(self.endpoint)
        self.client = make_client(settings)

    def __enter__(self) -> FeedbackLoop:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_experiments()
        self.server.__exit__(*exc)
        self.client.close()

    @property
    def url(self) -> str:
        return self.server.url

    def stop_experiments(self) -> None:
        for exp in self.store.all():
            if exp.running and exp.index == self.index:
                self.store.stop(exp.id)

    def experiment(self, exp_id: str, mode: Mode, variants: Sequence[tuple[str, str]]) -> Experiment:
        """Stop whatever runs on the index, start ``exp_id`` with equal shares, wait until it serves."""
        self.stop_experiments()
        share = 1.0 / len(variants)
        exp = Experiment(exp_id, self.index, mode, tuple(Variant(n, r, share) for n, r in variants), salt=exp_id)
        self.store.create(exp)
        time.sleep(0.5)  # the endpoint re-reads the experiments file every 0.2 s
        return exp

    def simulate(self, split: str, sessions: int, *, users: int, seed: int,
                 freshness: FreshnessPreference | None = None, propensity_sd: float | None = None,
                 click_model: str | None = None, progress: bool = True) -> SimulationReport:
        """``sessions`` simulated searches of the split's queries (with their qrels as relevance, relative
        to the collection's top grade); ``click_model`` and ``propensity_sd`` (> 0: users who differ in how
        much they click) default to the config's ``feedback.click_model`` and ``feedback.user_propensity_sd``."""
        from ltr.clicks.simulator import Simulator
        from ltr.clicks.user_models import make_click_model

        cfg = self.settings.index(self.index)
        feedback = self.settings.feedback
        default = "position-based" if freshness is not None else feedback.click_model  # the one with freshness
        model = make_click_model(click_model or default, freshness=freshness,
                                 propensity_sd=feedback.user_propensity_sd if propensity_sd is None else propensity_sd)
        with Simulator(self.url, self.index, self.collection.split_queries(split), self.collection.qrels(split),
                       model, users=users, seed=seed, workers=4, top_grade=collection_top_grade(self.collection),
                       query_fields=list(cfg.text_fields),
                       timestamp_field=cfg.timestamp_field if freshness else "") as sim:
            if not progress:
                return sim.run(sessions)
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task(f"simulating {sessions} sessions", total=sessions)
                return sim.run(sessions, on_session=lambda _r: bar.advance(task))

    def impressions(self, experiment: str | None = None, *, timeout_s: float = 120.0) -> tuple[list[Impression], int]:
        """(impressions with their clicks, orphan clicks) once the event log has shipped everything."""
        from ltr.clicks.impressions import read_impressions

        events = self.endpoint.events
        deadline = time.monotonic() + timeout_s
        while (events.queued or events.backlog or self.endpoint.post_response_work) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.5)  # the segment being written when the queue emptied
        return read_impressions(self.client, self.settings.feedback.events_index, index=self.index,
                                experiment=experiment)


def collection_top_grade(collection: Collection) -> int:
    """The highest qrels grade over every split: click models read grades relative to it (DESIGN.md)."""
    return max((g for split in collection.splits() for judged in collection.qrels(split).values()
                for g in judged.values()), default=1) or 1


def resalted(experiment: Experiment, impressions: Sequence[Impression], salt: str) -> tuple[Experiment, list[Any]]:
    """The same traffic as another A/B experiment: units re-assigned by ``salt``.

    Valid only when every variant serves the same ranker (an A/A test): then which arm a unit lands
    in cannot change what it saw, and each salt is an independent experiment on the same users.
    """
    if len({v.ranker for v in experiment.variants}) != 1:
        raise ValueError("re-salting is only valid for an A/A experiment (one ranker in every variant)")
    salted = replace(experiment, id=f"{experiment.id}-{salt}", salt=salt)
    return salted, [replace(i, experiment=salted.id, variant=salted.assign(i.unit).name) for i in impressions]
