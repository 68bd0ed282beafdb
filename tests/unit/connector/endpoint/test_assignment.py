"""Experiments on the endpoint: a new one goes live once its models load; the team-draft merge of two rankings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from connector.endpoint.serving import RankerHolder
from ltr.experiments.store import Variant
from ltr.experiments.team_draft import team_draft, team_draft_multileave
from ltr.ranking import Ranked
from tests.support.candidates import small_window


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


def test_interleaved_ranking_is_the_team_draft_merge_with_features_and_teams() -> None:
    from connector.endpoint.assignment import interleave

    cands = small_window()
    a = Ranked(cands, [4.0, 3.0, 2.0, 1.0], ranker="model:m1", model_id="m1", feature_names=["f"],
               features=np.array([[0.0], [1.0], [2.0], [np.nan]]))
    b = Ranked(list(reversed(cands)), [4.0, 3.0, 2.0, 1.0], ranker="hybrid")
    merged = interleave([a, b], (Variant("control", "model:m1"), Variant("new", "hybrid")), seed="rid-1", length=3)
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
    assert merged.shared_prefix == 0  # the two rankings differ from rank 1


def test_three_variants_are_multileaved_with_their_shared_prefix() -> None:
    from connector.endpoint.assignment import interleave

    cands = small_window()
    rankings = [cands, [cands[0], cands[2], cands[1], cands[3]], [cands[0], cands[3], cands[2], cands[1]]]
    ranked = [Ranked(r, [4.0, 3.0, 2.0, 1.0], ranker=name) for r, name in zip(rankings, ("es", "hybrid", "rrf"),
                                                                             strict=True)]
    merged = interleave(ranked, (Variant("x", "es"), Variant("y", "hybrid"), Variant("z", "rrf")), seed="s", length=4)
    ids, teams = team_draft_multileave([[c.doc_id for c in r] for r in rankings], seed="s", length=4)
    assert [c.doc_id for c in merged.candidates] == ids and merged.teams == teams
    assert merged.ranker == "interleave(es,hybrid,rrf)" and set(merged.team_rankers or {}) == {"A", "B", "C"}
    assert merged.shared_prefix == 1  # all three put "a" first
