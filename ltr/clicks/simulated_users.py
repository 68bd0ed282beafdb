"""Simulated users' click behaviour: which results of a ranking a user examines and clicks.

No public click log is reachable, so the feedback loop runs on simulated behaviour (DESIGN.md): the
position-based model — a user examines rank k with probability ``EXAMINATION[k]`` and clicks an
examined result with its attractiveness ``0.1 + 0.9 * (2**r - 1) / 15``, r the result's relevance
*level* 0..4: its qrels grade relative to the collection's top grade (``relative_level``; a binary
collection's relevant document is level 4, unjudged = 0). The cascade users of the online-LTR
literature (perfect, navigational, informational, cascade) are ``ltr.clicks.cascade_users``; every
model is chosen by name in ``ltr.clicks.user_models``. ``FreshnessPreference`` lets users also
prefer recent documents, which relevance judgments know nothing about: the freshness experiment's
signal lives only in clicks.

DESIGN.md's users are all alike. Real users are not: some click on almost every search, some rarely
(the per-user spread that makes bucketed A/B tests slow and interleaving, which compares two rankers
within one search, fast). ``propensity_sd`` > 0 gives each user a click propensity ``m_u`` — gamma
distributed with mean 1 and that standard deviation, fixed per user id — and clicks with probability
``min(1, m_u * examination * attractiveness)``. It is off (0) unless asked for. The ``Simulator`` that
sends these users to the endpoint is ``ltr.clicks.simulator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

EXAMINATION: tuple[float, ...] = (0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06)
MAX_GRADE = 4
LEVELS = MAX_GRADE + 1  # relevance levels 0..4 every click model is defined on


def relative_level(grade: float, top_grade: float) -> int:
    """A qrels grade as a relevance level 0..4 relative to the collection's top grade: round(4·g/top).

    Binary qrels (top 1): relevant = 4, the top level; grades 0..4 stay themselves; negative = 0."""
    if top_grade <= 0:
        return 0
    return min(max(round(MAX_GRADE * float(grade) / float(top_grade)), 0), MAX_GRADE)


def attractiveness(grade: int) -> float:
    """Click probability of an examined result of level ``grade`` (clipped to 0..4): 0.1 + 0.9·(2^r−1)/15."""
    r = min(max(int(grade), 0), MAX_GRADE)
    return 0.1 + 0.9 * (2**r - 1) / 15


def dwell_time_ms(level: int, z: float, median_ms: float, sigma: float) -> float:
    """A click's dwell: log-normal with median ``median_ms · 2^(level/2)`` (better results are read longer)."""
    median = median_ms * 2 ** (min(max(level, 0), MAX_GRADE) / 2)
    return round(float(median * math.exp(sigma * z)), 1)


@dataclass(frozen=True, slots=True)
class ShownDoc:
    """One result as the user saw it."""

    doc_id: str
    position: int  # 1-based
    grade: int = 0  # the relevance level 0..4 (``relative_level`` of the qrels grade)
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class SimClick:
    doc_id: str
    position: int
    dwell_ms: float | None = None


class ClickModel(Protocol):
    """Decides which shown results a user clicks; all randomness comes from ``rng``.

    ``clicks`` is one session at the endpoint; ``click_matrix`` is many sessions at once (sessions ×
    ranks of relevance levels, −1 = no result), for the offline sensitivity simulations."""

    @property
    def needs_timestamps(self) -> bool: ...

    def clicks(self, shown: Sequence[ShownDoc], rng: np.random.Generator, user: str = "") -> list[SimClick]: ...

    def click_matrix(self, levels: np.ndarray, rng: np.random.Generator,
                     propensity: np.ndarray | None = None) -> np.ndarray: ...


def user_propensity(user: str, sd: float) -> float:
    """The click propensity of ``user``: 1 when ``sd`` is 0, else a gamma draw (mean 1, sd ``sd``) that
    depends only on the user id (the same user is the same person in every run and experiment)."""
    if sd <= 0:
        return 1.0
    import hashlib

    seed = int.from_bytes(hashlib.sha256(f"propensity\x1f{user}".encode()).digest()[:8], "big")
    shape = 1.0 / sd**2
    return float(np.random.default_rng(seed).gamma(shape, 1.0 / shape))


@dataclass(frozen=True)
class FreshnessPreference:
    """Users prefer recent documents: attractiveness × ((1 − weight) + weight · 0.5^(age/half_life)).

    Age is counted from ``as_of`` (a fixed moment, for reproducible runs). A document without a
    timestamp gets the factor of an infinitely old one — users cannot see it is recent.
    """

    half_life_days: float
    weight: float
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0, got {self.half_life_days}")
        if not 0 <= self.weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")

    def recency(self, timestamp: datetime | None) -> float:
        if timestamp is None:
            return 0.0
        ts = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        age_days = max((self.as_of - ts).total_seconds() / 86_400.0, 0.0)
        return float(0.5 ** (age_days / self.half_life_days))

    def factor(self, timestamp: datetime | None) -> float:
        return (1.0 - self.weight) + self.weight * self.recency(timestamp)


@dataclass(frozen=True)
class PositionBasedModel:
    """DESIGN.md's position-based model, optionally with a freshness preference and dwell times.

    Dwell (ms) of a click is log-normal with median ``dwell_median_ms · 2^(grade/2)`` — better results
    are read longer. Every call draws the same number of random numbers whatever the outcome, so a
    session's clicks depend only on its RNG and what it was shown.
    """

    examination: tuple[float, ...] = EXAMINATION
    freshness: FreshnessPreference | None = None
    propensity_sd: float = 0.0  # per-user click propensity spread (module docstring); 0 = DESIGN.md's users
    dwell: bool = True
    dwell_median_ms: float = 8000.0
    dwell_sigma: float = 0.8

    @property
    def needs_timestamps(self) -> bool:
        return self.freshness is not None and self.freshness.weight > 0

    def examination_at(self, position: int) -> float:
        return self.examination[position - 1] if 1 <= position <= len(self.examination) else 0.0

    def __post_init__(self) -> None:
        if not (self.propensity_sd >= 0 and math.isfinite(self.propensity_sd)):
            raise ValueError(f"propensity_sd must be a finite number >= 0, got {self.propensity_sd}")

    def click_probability(self, doc: ShownDoc, propensity: float = 1.0) -> float:
        p = self.examination_at(doc.position) * attractiveness(doc.grade)
        if self.freshness is not None:
            p *= self.freshness.factor(doc.timestamp)
        return min(1.0, propensity * p)

    def clicks(self, shown: Sequence[ShownDoc], rng: np.random.Generator, user: str = "") -> list[SimClick]:
        propensity = user_propensity(user, self.propensity_sd)
        draws = rng.random(len(shown))
        dwell_draws = rng.standard_normal(len(shown))
        out: list[SimClick] = []
        for doc, u, z in zip(shown, draws, dwell_draws, strict=True):
            if u < self.click_probability(doc, propensity):
                dwell = dwell_time_ms(doc.grade, z, self.dwell_median_ms, self.dwell_sigma) if self.dwell else None
                out.append(SimClick(doc.doc_id, doc.position, dwell))
        return out

    def click_matrix(self, levels: np.ndarray, rng: np.random.Generator,
                     propensity: np.ndarray | None = None) -> np.ndarray:
        """Clicks of many sessions at once (rank k of a row = position k + 1); no freshness (no timestamps)."""
        levels = np.asarray(levels)
        n, k = levels.shape
        exam = np.array([self.examination_at(p) for p in range(1, k + 1)])
        attract = np.array([attractiveness(r) for r in range(LEVELS)])[np.clip(levels, 0, MAX_GRADE)]
        p = exam[None, :] * attract
        if propensity is not None:
            p = np.minimum(1.0, p * np.asarray(propensity, dtype=float)[:, None])
        return (rng.random((n, k)) < np.where(levels >= 0, p, 0.0))
