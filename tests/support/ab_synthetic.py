"""Synthetic experiment traffic (no Elasticsearch), and the experiments and A/A tolerance the statistics tests share.

Users have heterogeneous click propensities (Beta-distributed) and heavy-tailed search counts, so
one user's searches are correlated — exactly what makes per-impression intervals too narrow.
Clicks follow DESIGN.md's position-based model: P(click at rank k) = examination[k] · attractiveness.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats as scipy_stats

from ltr.clicks.impressions import Impression, Shown
from ltr.experiments.store import Experiment, Variant
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


def ab_experiment(exp_id: str = "exp", salt: str = "s", shares: tuple[float, float] = (0.5, 0.5)) -> Experiment:
    """A two-variant bucketed experiment: A = hybrid (control), B = a model."""
    return Experiment(exp_id, "idx", "ab", (Variant("A", "hybrid", shares[0]), Variant("B", "model:m1", shares[1])),
                      salt=salt)


def interleave_experiment(exp_id: str = "il") -> Experiment:
    """A team-draft interleaving experiment: team A = hybrid, team B = a model."""
    return Experiment(exp_id, "idx", "interleave", (Variant("A", "hybrid"), Variant("B", "model:m1")), salt="s")


def false_positive_tolerance(n: int, rate: float = 0.05) -> float:
    """The largest false-positive rate a correct 5% test shows in n experiments, 99% of the time."""
    return float(scipy_stats.binom.ppf(0.99, n, rate)) / n
