"""Synthetic experiment traffic for the statistics and report tests (no Elasticsearch).

Users have heterogeneous click propensities (Beta-distributed) and heavy-tailed search counts, so
one user's searches are correlated — exactly what makes per-impression intervals too narrow.
Clicks follow DESIGN.md's position-based model: P(click at rank k) = examination[k] · attractiveness.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ltr.clicks.impressions import Impression, Shown
from ltr.experiments.store import Experiment
from ltr.experiments.team_draft import TEAM_B, team_draft

EXAMINATION = np.array([0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06])
START = datetime(2025, 3, 1, tzinfo=UTC)
DOCS_A = [f"a{k}" for k in range(10)]
DOCS_B = [f"b{k}" for k in range(10)]
HITS = tuple(Shown(f"d{k}", k + 1) for k in range(10))


def synthetic_impressions(experiment: Experiment, *, users: int = 150, mean_searches: float = 12.0,
                          lift: float = 0.0, seed: int = 0, hours: float = 48.0,
                          propensity: tuple[float, float] = (0.6, 1.4)) -> list[Impression]:
    """Impressions of ``experiment``; ``lift`` multiplies the attractiveness of the treatment
    (A/B: the second variant's results; interleaving: team B's documents)."""
    rng = np.random.default_rng(seed)
    treatment = experiment.variants[1].name
    out: list[Impression] = []
    for u in range(users):
        user = f"user-{seed}-{u}"
        p_user = rng.beta(*propensity)
        searches = 1 + int(rng.negative_binomial(1, 1 / mean_searches))  # geometric: heavy-tailed per user
        offsets = rng.uniform(0, hours, searches)
        draws = rng.random((searches, 10))
        variant = experiment.assign(user).name if experiment.mode == "ab" else None
        for s in range(searches):
            rid = f"r-{seed}-{u}-{s}"
            ts = START + timedelta(hours=float(offsets[s]))
            if variant is not None:
                boost = 1 + lift if variant == treatment else 1.0
                hits = list(HITS)
                clicked = draws[s] < EXAMINATION * p_user * boost
            else:
                docs, teams = team_draft(DOCS_A, DOCS_B, seed=rid, length=10)
                hits = [Shown(d, k + 1, t) for k, (d, t) in enumerate(zip(docs, teams, strict=True))]
                clicked = draws[s] < EXAMINATION * p_user * np.array([1 + lift if t == TEAM_B else 1.0
                                                                       for t in teams])
            clicks = {h.doc_id: ts + timedelta(seconds=5) for h, c in zip(hits, clicked, strict=True) if c}
            out.append(Impression(request_id=rid, timestamp=ts, index=experiment.index, query=f"q{s % 7}",
                                  hits=hits, user_id=user, experiment=experiment.id, variant=variant,
                                  clicks=clicks))
    out.sort(key=lambda i: (i.timestamp, i.request_id))
    return out
