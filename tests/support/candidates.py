"""A four-candidate window: two found by the lexical leg, three by the kNN leg, one by both."""

from __future__ import annotations

from connector.retrieval.candidates import DENSE, LEXICAL, Candidate


def small_window() -> list[Candidate]:
    return [Candidate("a", leg_scores={LEXICAL: 3.0}, leg_ranks={LEXICAL: 2}),
            Candidate("b", leg_scores={LEXICAL: 5.0, DENSE: 0.5}, leg_ranks={LEXICAL: 1, DENSE: 2}),
            Candidate("c", leg_scores={DENSE: 0.9}, leg_ranks={DENSE: 1}),
            Candidate("d", leg_scores={DENSE: 0.1}, leg_ranks={DENSE: 3})]
