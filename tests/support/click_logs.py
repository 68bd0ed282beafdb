"""Impressions clicked by DESIGN.md's position-based users, for the click model and statistics tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ltr.clicks.impressions import Impression, Shown
from ltr.clicks.pbm import DESIGN_EXAMINATION

T0 = datetime(2025, 3, 1, tzinfo=UTC)
GRADE_CLICK = {g: 0.1 + 0.9 * (2**g - 1) / 15 for g in range(5)}  # DESIGN.md, given examination


def simulate(*, queries: int = 30, docs: int = 15, per_query: int = 200, seed: int = 1,
             shuffle: bool = True) -> tuple[list[Impression], dict[tuple[str, str], float]]:
    """Impressions of 10 docs each, clicked by DESIGN.md's PBM; documents at varied positions."""
    rng = random.Random(seed)
    impressions: list[Impression] = []
    alpha: dict[tuple[str, str], float] = {}
    for q in range(queries):
        pool = [f"q{q}-d{i}" for i in range(docs)]
        for d in pool:
            alpha[(f"query {q}", d)] = GRADE_CLICK[rng.randrange(5)]
        fixed = rng.sample(pool, 10)
        for k in range(per_query):
            shown = rng.sample(pool, 10) if shuffle else fixed
            when = T0 + timedelta(minutes=len(impressions))
            imp = Impression(f"r{q}-{k}", when, "idx", f"  Query {q} ", [Shown(d, i + 1) for i, d in enumerate(shown)])
            for i, d in enumerate(shown):
                if rng.random() < DESIGN_EXAMINATION[i] * alpha[(f"query {q}", d)]:
                    imp.clicks[d] = when
            impressions.append(imp)
    return impressions, alpha
