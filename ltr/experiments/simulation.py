"""Offline traffic on fixed result lists: many simulated experiments at once, for power and A/A rates.

Measuring how many searches a method needs (and how often it is fooled) takes thousands of
experiments: too many to send through the endpoint. The rankers' result lists are deterministic per
query, so they are captured once from the real engine (``RankedLists``) and the experiments are then
simulated here, vectorised in numpy: each session picks a query (and, under interleaving, one of the
team-draft coin sequences, enumerated exactly by ``ltr.experiments.interleaved_lists``), and the
click model decides the clicks of the whole batch at once (``ClickModel.click_matrix``).

``Traffic`` draws ``replicates`` experiments of ``n`` sessions each; ``ltr.experiments.sensitivity``
runs each method's test on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankedLists:
    """Each ranker's top-k doc ids per query, and the relevance level (0..4) of every judged doc."""

    queries: tuple[str, ...]
    lists: Mapping[str, Sequence[Sequence[str]]]  # ranker -> per query (in ``queries`` order) its doc ids
    levels: Mapping[str, Mapping[str, int]]  # query -> doc -> level; unjudged = 0
    depth: int = 10

    def level_matrix(self, ranker: str) -> np.ndarray:
        """(queries × depth) levels of ``ranker``'s lists; −1 where a list is shorter."""
        out = np.full((len(self.queries), self.depth), -1, dtype=np.int64)
        for q, (qid, docs) in enumerate(zip(self.queries, self.lists[ranker], strict=True)):
            judged = self.levels.get(qid, {})
            for k, doc in enumerate(list(docs)[: self.depth]):
                out[q, k] = judged.get(doc, 0)
        return out


@dataclass
class Traffic:
    """Sessions of ``replicates`` experiments × ``n`` each: who searched, which query, and the user's propensity."""

    replicates: int
    n: int
    users: int
    user: np.ndarray  # (replicates, n) user index within the experiment
    query: np.ndarray  # (replicates, n)
    propensity: np.ndarray | None  # (replicates, users) click propensity, None = identical users


def draw_traffic(rng: np.random.Generator, replicates: int, n: int, queries: int, *,
                 searches_per_user: float = 5.0, propensity_sd: float = 0.0) -> Traffic:
    """``n`` searches by ``n / searches_per_user`` users (uniformly), each a uniformly drawn query."""
    users = max(2, round(n / searches_per_user))
    user = rng.integers(0, users, size=(replicates, n))
    query = rng.integers(0, queries, size=(replicates, n))
    propensity = None
    if propensity_sd > 0:
        shape = 1.0 / propensity_sd**2
        propensity = rng.gamma(shape, 1.0 / shape, size=(replicates, users))
    return Traffic(replicates, n, users, user, query, propensity)


def session_propensity(traffic: Traffic) -> np.ndarray | None:
    """Each session's user propensity, flattened (replicates·n,)."""
    if traffic.propensity is None:
        return None
    return np.take_along_axis(traffic.propensity, traffic.user, axis=1).ravel()


def per_user_means(values: np.ndarray, traffic: Traffic, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean of ``values`` per (replicate, user) over the sessions in ``mask``, how many sessions) — both
    (replicates, users); the mean is NaN for a user without such sessions."""
    r = np.repeat(np.arange(traffic.replicates), traffic.n)
    codes = r * traffic.users + traffic.user.ravel()
    size = traffic.replicates * traffic.users
    keep = mask.ravel()
    sums = np.bincount(codes[keep], weights=values.ravel()[keep], minlength=size)
    counts = np.bincount(codes[keep], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means.reshape(traffic.replicates, traffic.users), counts.reshape(traffic.replicates, traffic.users)
