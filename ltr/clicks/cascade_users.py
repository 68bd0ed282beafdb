"""Cascade users: scan the results top-down, click by relevance, stop after a click with some probability.

The simulated users of online learning-to-rank evaluation (Hofmann, Whiteson & de Rijke, "A
probabilistic method for inferring preferences from clicks", CIKM 2011; the five-grade tables of
the later online-LTR literature, e.g. Oosterhuis & de Rijke 2018): a user examines rank 1, clicks
an examined result of relevance level r with probability ``click[r]``, and after a click stops with
probability ``stop[r]``; without a stop (or a click) the user examines the next rank. Levels are
0..4, relative to the collection's top grade (``ltr.clicks.simulated_users.relative_level``): a
binary collection's relevant document is level 4 and its other documents level 0 — the extremes
of each table, which are the binary models of Hofmann et al. 2011.

- ``perfect``: click .0/.2/.4/.8/1.0, never stops — clicks exactly by relevance.
- ``navigational``: click .05/.3/.5/.7/.95, stop .2/.3/.5/.7/.9 — looks for one good result.
- ``informational``: click .4/.6/.7/.8/.9, stop .1/.2/.3/.4/.5 — reads around, clicks noisily.
- ``cascade`` (Craswell et al., WSDM 2008): clicks with DESIGN.md's attractiveness
  ``0.1 + 0.9·(2^r−1)/15`` and always stops after the first click.

``propensity_sd`` > 0 makes users differ (each user's click probabilities times a gamma-distributed
propensity with mean 1, fixed per user id, clipped at 1), as for the position-based users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ltr.clicks.simulated_users import (
    LEVELS,
    ShownDoc,
    SimClick,
    attractiveness,
    dwell_time_ms,
    user_propensity,
)


@dataclass(frozen=True)
class CascadeModel:
    """A cascade user: ``click[level]`` and ``stop[level]`` for levels 0..4, scanning ``depth`` ranks."""

    name: str
    click: tuple[float, ...]
    stop: tuple[float, ...]
    depth: int = 10
    propensity_sd: float = 0.0
    dwell: bool = True
    dwell_median_ms: float = 8000.0
    dwell_sigma: float = 0.8

    def __post_init__(self) -> None:
        for label, probs in (("click", self.click), ("stop", self.stop)):
            if len(probs) != LEVELS or not all(0.0 <= p <= 1.0 for p in probs):
                raise ValueError(f"{self.name}: {label} needs {LEVELS} probabilities in [0, 1], got {probs}")
        if not (self.propensity_sd >= 0 and math.isfinite(self.propensity_sd)):
            raise ValueError(f"propensity_sd must be a finite number >= 0, got {self.propensity_sd}")

    @property
    def needs_timestamps(self) -> bool:
        return False

    def click_matrix(self, levels: np.ndarray, rng: np.random.Generator,
                     propensity: np.ndarray | None = None) -> np.ndarray:
        """Clicks (bool, sessions × ranks) on lists of relevance ``levels`` (int, sessions × ranks; −1 = no
        result there). Draws two uniforms per cell whatever happens, so clicks depend only on the RNG."""
        levels = np.asarray(levels)
        n, k = levels.shape
        click_u, stop_u = rng.random((n, k)), rng.random((n, k))
        p_click = np.asarray(self.click)[np.clip(levels, 0, LEVELS - 1)]
        if propensity is not None:
            p_click = np.minimum(1.0, p_click * np.asarray(propensity, dtype=float)[:, None])
        p_click = np.where((levels >= 0) & (np.arange(k) < self.depth), p_click, 0.0)
        p_stop = np.asarray(self.stop)[np.clip(levels, 0, LEVELS - 1)]
        clicks = np.zeros((n, k), dtype=bool)
        reading = np.ones(n, dtype=bool)
        for rank in range(k):
            clicks[:, rank] = reading & (click_u[:, rank] < p_click[:, rank])
            reading &= ~(clicks[:, rank] & (stop_u[:, rank] < p_stop[:, rank]))
        return clicks

    def clicks(self, shown: Sequence[ShownDoc], rng: np.random.Generator, user: str = "") -> list[SimClick]:
        ordered = sorted(shown, key=lambda d: d.position)
        levels = np.array([[d.grade for d in ordered]], dtype=np.int64).reshape(1, len(ordered))
        propensity = np.array([user_propensity(user, self.propensity_sd)])
        clicked = self.click_matrix(levels, rng, propensity)[0]
        dwell_draws = rng.standard_normal(len(ordered))
        return [SimClick(d.doc_id, d.position,
                         dwell_time_ms(d.grade, z, self.dwell_median_ms, self.dwell_sigma) if self.dwell else None)
                for d, c, z in zip(ordered, clicked, dwell_draws, strict=True) if c]


def cascade_presets() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """(click, stop) per level 0..4 of each named cascade user."""
    return {
        "perfect": ((0.0, 0.2, 0.4, 0.8, 1.0), (0.0, 0.0, 0.0, 0.0, 0.0)),
        "navigational": ((0.05, 0.3, 0.5, 0.7, 0.95), (0.2, 0.3, 0.5, 0.7, 0.9)),
        "informational": ((0.4, 0.6, 0.7, 0.8, 0.9), (0.1, 0.2, 0.3, 0.4, 0.5)),
        "cascade": (tuple(attractiveness(r) for r in range(LEVELS)), (1.0,) * LEVELS),
    }
