"""Experiments at serving time: which experiment runs on an index, and how it ranks one search.

``Experiments`` re-reads ``ltr.experiments.store`` when it changes (checked at most once per
``check_s``: a local file in the request, shared documents in Elasticsearch in the background). A
new state goes live once the rankers its experiments name are loaded: a background thread loads them
while searches go on under the previous state, so no search waits for a model load.

``Experiments.assign`` gives a search without an explicit variant (header or ``ext``) its ranking: the
user's sticky variant (``ab``: unit = user header, else session header, else request id) or the
team-draft merge of the variants (``interleave``: two variants interleaved, more multileaved; merged by
``interleave``); the ``Assignment`` says
which, for the ``X-Hybridrank-Experiment`` header and the impression.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from connector.endpoint import dsl
from connector.endpoint.outcome import Outcome
from connector.endpoint.serving import RankerHolder
from connector.state.documents import Version
from hybridrank.errors import HybridRankError
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from ltr.experiments.team_draft import shared_prefix, team_draft, team_draft_multileave, team_label
from ltr.ranking import Ranked

log = logging.getLogger("hybridrank.serve")


@dataclass(frozen=True)
class Assignment:
    """How one search is ranked with respect to experiments, and the id its impression carries."""

    request_id: str
    experiment: Experiment | None = None
    variant: Variant | None = None  # the A/B variant; None under interleaving
    explicit_variant: str | None = None  # the app's own variant override (no experiment then)

    @property
    def interleave(self) -> bool:
        return self.experiment is not None and self.experiment.mode == "interleave"

    @property
    def label(self) -> str | None:
        if self.experiment is None:
            return None
        return f"{self.experiment.id}/{self.variant.name if self.variant else 'interleave'}"


class Experiments:
    """The running experiment of each index, as served (``holder`` gives the endpoint's ranker holder)."""

    def __init__(self, store: ExperimentStore, holder: Callable[[], RankerHolder], *, check_s: float = 1.0) -> None:
        self.store = store
        self.holder = holder
        self.check_s = check_s
        self._running: dict[str, Experiment] = {}
        self._mtime: Version = -1.0
        self._checked = -math.inf
        self._loading: threading.Thread | None = None

    def running(self, index: str) -> Experiment | None:
        """The running experiment of ``index``; the file is checked at most once per ``check_s``."""
        self.refresh()
        return self._running.get(index)

    def refresh(self) -> None:
        """Re-read the experiments if they changed; the new state goes live once its rankers are loaded.

        A local file is checked in the request (a ``stat``); shared documents in Elasticsearch are checked
        by a background thread, so no search waits on (or fails with) the state's cluster."""
        now = time.monotonic()
        if now - self._checked >= self.check_s and not self._loading_now():
            self._checked = now
            if getattr(self.store.documents, "local", False):
                self._check()
            else:
                self._loading = threading.Thread(target=self._check, kwargs={"in_background": True},
                                                 name="experiments-check", daemon=True)
                self._loading.start()

    def _check(self, *, in_background: bool = False) -> None:
        try:
            mtime = self.store.mtime()
            if mtime == self._mtime:
                return
            running = {e.index: e for e in self.store.all() if e.running}
        except (HybridRankError, OSError, TypeError, KeyError) as exc:  # keep serving the last good state
            log.warning("experiments unreadable; keeping the previous state", extra={"reason": str(exc)})
            return
        self._mtime = mtime
        if in_background or not any(self.holder().needs_thread(e.index, v.ranker)
                                    for e in running.values() for v in e.variants):
            self._go_live(running)
        else:
            self._loading = threading.Thread(target=self._go_live, args=(running,),
                                             name="experiments-load", daemon=True)
            self._loading.start()

    def wait_until_live(self) -> None:
        """Block until the state being loaded (if any) has gone live."""
        if self._loading is not None:
            self._loading.join()

    def assign(self, plan: dsl.SearchPlan, request_id: str, outcome: Outcome) -> tuple[dsl.SearchPlan, Assignment]:
        """The plan with the variant the experiment gives this search, and the assignment to log."""
        if plan.variant is not None:
            return plan, Assignment(request_id, explicit_variant=plan.variant)
        experiment = self.running(plan.index)
        if experiment is None:
            return plan, Assignment(request_id)
        if experiment.mode == "interleave":
            return plan, Assignment(request_id, experiment)
        variant = experiment.assign(outcome.user_id or outcome.session_id or request_id)
        return replace(plan, variant=variant.ranker), Assignment(request_id, experiment, variant)

    def _loading_now(self) -> bool:
        return self._loading is not None and self._loading.is_alive()

    def _go_live(self, running: dict[str, Experiment]) -> None:
        try:
            for experiment in running.values():
                for variant in experiment.variants:
                    self.holder().get(experiment.index, variant.ranker)  # a failed load is a fallback, never raises
        finally:
            self._running = running  # one reference assignment, as the holder swaps its slots
            log.info("experiments loaded", extra={"running": {i: e.id for i, e in running.items()}})


def interleave(ranked: list[Ranked], variants: tuple[Variant, ...], *, seed: str, length: int) -> Ranked:
    """Team-draft merge of the variants' rankings of the same window (two: interleaving, more:
    multileaving); scores fall with the merged rank."""
    rankings = [[c.doc_id for c in r.candidates] for r in ranked]
    if len(rankings) == 2:
        merged, teams = team_draft(rankings[0], rankings[1], seed=seed, length=length)
    else:
        merged, teams = team_draft_multileave(rankings, seed=seed, length=length)
    by_id = {c.doc_id: c for r in reversed(ranked) for c in r.candidates}
    source = next((r for r in ranked if r.features is not None), None)
    features = None
    if source is not None and source.features is not None:
        rows = {c.doc_id: source.features[i] for i, c in enumerate(source.candidates)}
        if all(d in rows for d in merged):
            features = np.asarray([rows[d] for d in merged]) if merged else source.features[:0]
    timings: dict[str, float] = {}
    for part in ranked:
        for stage, seconds in part.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    count = len(merged)
    return Ranked(
        [by_id[d] for d in merged], [float(count - i) for i in range(count)],
        ranker=f"interleave({','.join(r.ranker for r in ranked)})",
        feature_names=source.feature_names if features is not None and source is not None else None,
        features=features, timings=timings, teams=teams,
        team_rankers={team_label(i): {"variant": v.name, "ranker": r.ranker, "model_id": r.model_id}
                      for i, (r, v) in enumerate(zip(ranked, variants, strict=True))},
        shared_prefix=min(shared_prefix(rankings), count),
    )
