"""Team-draft interleaving (Radlinski et al. 2008) and multileaving (Schuth et al. 2014): the merged list.

An ``interleave`` experiment shows each search one list merged from its variants' rankings; every
shown document is credited to the team that picked it (``TEAM_A`` for the first variant, ``TEAM_B``
for the second, then "C", "D", … : ``team_label``), and clicks on the documents decide which team
won. Two variants merge with ``team_draft``, more with ``team_draft_multileave``; the endpoint logs
each hit's team in the impression, and whether it lies in the rankings' shared prefix
(``shared_prefix``: the top ranks where every ranking holds the same documents in the same order,
whose clicks credit a team at random — ``ltr.experiments.credit``). ``ltr.experiments.interleaving``
and ``ltr.experiments.multileaving`` count the credit (``team_clicks``, ``interleaving_outcome``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

TEAM_A = "A"
TEAM_B = "B"
MAX_TEAMS = 26


def team_label(i: int) -> str:
    """The team of the ``i``-th variant (0-based): "A", "B", "C", …"""
    if not 0 <= i < MAX_TEAMS:
        raise ValueError(f"at most {MAX_TEAMS} teams, got index {i}")
    return chr(ord("A") + i)


def shared_prefix(rankings: Sequence[Sequence[str]]) -> int:
    """How many top ranks every ranking has in common (same documents, same order)."""
    count = 0
    for column in zip(*rankings, strict=False):
        if any(doc != column[0] for doc in column):
            break
        count += 1
    return count


def team_draft(ranking_a: Sequence[str], ranking_b: Sequence[str], *, seed: str,
               length: int | None = None, rng: random.Random | None = None) -> tuple[list[str], list[str]]:
    """Team-draft interleaving of two rankings: (merged doc ids, team of each, "A" or "B").

    In each round a fair coin (seeded by ``seed``, e.g. the request id, so it is reproducible) picks
    which team drafts first; a team drafts its highest-ranked document not yet taken. Teams draft
    alternately while the smaller team catches up, as in the original algorithm. ``rng`` replaces the
    seeded coin (the offline simulations enumerate every coin sequence with it).
    """
    rng = rng or random.Random(seed)
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


def team_draft_multileave(rankings: Sequence[Sequence[str]], *, seed: str,
                          length: int | None = None) -> tuple[list[str], list[str]]:
    """Team-draft multileaving of several rankings (Schuth et al., CIKM 2014): (merged, team of each).

    Each round draws a random order of the teams (seeded by ``seed``); in that order every team
    drafts its highest-ranked document not yet taken. Teams that have run out of documents skip.
    """
    rng = random.Random(seed)
    total = len(set().union(*map(set, rankings))) if rankings else 0
    limit = total if length is None else min(length, total)
    labels = [team_label(i) for i in range(len(rankings))]
    merged: list[str] = []
    teams: list[str] = []
    taken: set[str] = set()
    pos = [0] * len(rankings)
    while len(merged) < limit:
        drafted = False
        for i in rng.sample(range(len(rankings)), len(rankings)):
            if len(merged) >= limit:
                break
            ranking = rankings[i]
            while pos[i] < len(ranking) and ranking[pos[i]] in taken:
                pos[i] += 1
            if pos[i] < len(ranking):
                taken.add(ranking[pos[i]])
                merged.append(ranking[pos[i]])
                teams.append(labels[i])
                drafted = True
        if not drafted:
            break
    return merged, teams
