"""Every team-draft list two fixed rankings can produce, for the offline simulations (``simulation``).

Team-draft flips one coin per round (who drafts first); a top-k list takes ``ceil(k / 2)`` rounds,
so a query has at most ``2^ceil(k/2)`` equally likely interleavings (32 for k = 10). ``interleavings``
runs the endpoint's own ``team_draft`` once per coin sequence, so a simulated session that draws a
sequence uniformly sees exactly what the endpoint would show.

``Interleavings.shared``: the ranks where both rankings agree on every document from rank 1 down
(``team_draft.shared_prefix``). Clicks there credit whichever team the coin made draft the shared
document, so they carry no preference (``ltr.experiments.credit``).

``null_pair``: an equally good rival of a ranking — the same list with documents of equal relevance
swapped in pairs (an involution), so under any click model that reads only the level at each rank
the two rankers are exactly as good, and the pair is symmetric: the A/A test of interleaving
methods, which identical rankers would make trivial for a credit rule that skips the shared prefix.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ltr.experiments.team_draft import TEAM_A, TEAM_B, shared_prefix, team_draft


class _Coins(random.Random):
    """A scripted coin: ``random()`` returns the given values in turn (then 0.75: "B first")."""

    def __init__(self, values: Sequence[float]) -> None:
        super().__init__(0)
        self._values = list(values)

    def random(self) -> float:
        return self._values.pop(0) if self._values else 0.75


@dataclass(frozen=True)
class Interleavings:
    """Per query and coin sequence: the shown levels, each rank's team (0 = A, 1 = B, −1 = none)."""

    levels: np.ndarray  # (queries, sequences, depth)
    teams: np.ndarray  # (queries, sequences, depth)
    shared: np.ndarray  # (queries, depth) bool: inside the rankings' shared prefix


def interleavings(lists_a: Sequence[Sequence[str]], lists_b: Sequence[Sequence[str]],
                  levels: Sequence[Mapping[str, int]], depth: int = 10) -> Interleavings:
    """Every team-draft interleaving of each query's two lists (both cut to ``depth``)."""
    rounds = (depth + 1) // 2
    sequences = list(itertools.product((0.25, 0.75), repeat=rounds))  # < .5: A drafts first
    n_q = len(lists_a)
    lv = np.full((n_q, len(sequences), depth), -1, dtype=np.int64)
    tm = np.full((n_q, len(sequences), depth), -1, dtype=np.int8)
    shared = np.zeros((n_q, depth), dtype=bool)
    for q, (a, b, judged) in enumerate(zip(lists_a, lists_b, levels, strict=True)):
        a, b = list(a)[:depth], list(b)[:depth]
        shared[q, : shared_prefix([a, b])] = True
        for s, coins in enumerate(sequences):
            merged, teams = team_draft(a, b, seed="", length=depth, rng=_Coins(coins))
            for k, (doc, team) in enumerate(zip(merged, teams, strict=True)):
                lv[q, s, k] = judged.get(doc, 0)
                tm[q, s, k] = 0 if team == TEAM_A else 1 if team == TEAM_B else -1
    return Interleavings(lv, tm, shared)


def null_pair(ranking: Sequence[str], judged: Mapping[str, int], rng: np.random.Generator) -> list[str]:
    """``ranking`` with documents of equal level swapped in random disjoint pairs (an involution)."""
    out = list(ranking)
    by_level: dict[int, list[int]] = {}
    for k, doc in enumerate(out):
        by_level.setdefault(judged.get(doc, 0), []).append(k)
    for ranks in by_level.values():
        order = [ranks[i] for i in rng.permutation(len(ranks))]
        for i, j in zip(order[0::2], order[1::2], strict=False):
            out[i], out[j] = out[j], out[i]
    return out
