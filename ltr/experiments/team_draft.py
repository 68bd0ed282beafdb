"""Team-draft interleaving (Radlinski et al. 2008): the merged result list and the click credit.

An ``interleave`` experiment shows each search one list merged from its two variants' rankings;
every shown document is credited to the team that picked it (``TEAM_A``, the first variant, or
``TEAM_B``), and clicks on the documents decide which team won. The endpoint merges with
``team_draft`` and logs each hit's team in the impression; ``ltr.experiments.interleaving`` counts
the same credit (``team_clicks``, ``interleaving_outcome``) from the logged teams and clicks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

TEAM_A = "A"
TEAM_B = "B"


def team_draft(ranking_a: Sequence[str], ranking_b: Sequence[str], *, seed: str,
               length: int | None = None) -> tuple[list[str], list[str]]:
    """Team-draft interleaving of two rankings: (merged doc ids, team of each, "A" or "B").

    In each round a fair coin (seeded by ``seed``, e.g. the request id, so it is reproducible) picks
    which team drafts first; a team drafts its highest-ranked document not yet taken. Teams draft
    alternately while the smaller team catches up, as in the original algorithm.
    """
    rng = random.Random(seed)
    total = len(set(ranking_a) | set(ranking_b))
    limit = total if length is None else min(length, total)
    merged: list[str] = []
    teams: list[str] = []
    taken: set[str] = set()
    count = {TEAM_A: 0, TEAM_B: 0}
    pos = {TEAM_A: 0, TEAM_B: 0}
    source = {TEAM_A: ranking_a, TEAM_B: ranking_b}

    def pick(team: str) -> bool:
        ranking = source[team]
        while pos[team] < len(ranking) and ranking[pos[team]] in taken:
            pos[team] += 1
        if pos[team] >= len(ranking):
            return False
        doc = ranking[pos[team]]
        taken.add(doc)
        merged.append(doc)
        teams.append(team)
        count[team] += 1
        return True

    while len(merged) < limit:
        if count[TEAM_A] < count[TEAM_B] or (count[TEAM_A] == count[TEAM_B] and rng.random() < 0.5):
            first, second = TEAM_A, TEAM_B
        else:
            first, second = TEAM_B, TEAM_A
        if not pick(first) and not pick(second):
            break
    return merged, teams


def team_clicks(teams: Sequence[str | None], clicked: Sequence[bool]) -> tuple[int, int]:
    """(clicks on team A's documents, clicks on team B's) of one interleaved result list."""
    a = sum(1 for t, c in zip(teams, clicked, strict=True) if c and t == TEAM_A)
    b = sum(1 for t, c in zip(teams, clicked, strict=True) if c and t == TEAM_B)
    return a, b


def interleaving_outcome(teams: Sequence[str | None], clicked: Sequence[bool]) -> int:
    """+1 if team A got more clicks, -1 if team B did, 0 for a tie (including no click)."""
    a, b = team_clicks(teams, clicked)
    return (a > b) - (a < b)
