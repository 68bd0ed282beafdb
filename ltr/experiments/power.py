"""Planning an experiment: how many searches it took, or would take, for its test to decide.

``sessions_to_significance`` replays one run in time order and reports when p stayed below alpha;
that is a single noisy path, so ``sessions_for_power`` asks instead how often a fresh experiment of n
searches would decide, by a cluster bootstrap over users. Both run the experiment's own test
(``ltr.experiments.bucketed``'s per-user Welch test, or ``ltr.experiments.interleaving``'s sign test)
hundreds or thousands of times, so the A/B test keeps its t approximation here instead of the
randomisation p-value of the report (``ltr.experiments.randomization``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression
from ltr.experiments.bucketed import ab_arrays, arm_test
from ltr.experiments.credit import sign_test_counts
from ltr.experiments.interleaving import credit_b, outcome_b
from ltr.experiments.metrics import LOWER_IS_BETTER, encode_units, experiment_impressions
from ltr.experiments.results import PowerEstimate
from ltr.experiments.store import Experiment


def sessions_to_significance(impressions: Sequence[Impression], experiment: Experiment, *,
                             alpha: float = 0.05, primary: str = "ctr", step: int | None = None,
                             min_sessions: int = 20) -> int | None:
    """The first number of searches (in time order) after which p stays below ``alpha``.

    p is evaluated after every ``step`` searches (default: about 200 checkpoints, always including
    the last); A/B uses the per-user Welch test of ``primary`` (treatment = second variant),
    interleaving the per-search sign test. None if p is not below ``alpha`` at the end.
    """

    imps, _ = experiment_impressions(impressions, experiment)
    n = len(imps)
    if n < min_sessions:
        return None
    every = step or max(1, n // 200)
    checkpoints = list(range(min_sessions, n + 1, every))
    if checkpoints[-1] != n:
        checkpoints.append(n)
    pvalue: Callable[[int], float]
    if experiment.mode == "interleave":
        cum_b = np.cumsum([outcome_b(i) > 0 for i in imps])
        cum_a = np.cumsum([outcome_b(i) < 0 for i in imps])

        def pvalue(k: int) -> float:
            wb, wa = int(cum_b[k - 1]), int(cum_a[k - 1])
            return float(sign_test_counts(wa, wb))
    else:
        y, arm, codes = ab_arrays(imps, experiment, primary, None)

        def pvalue(k: int) -> float:
            c = arm_test(y[:k], arm[:k], codes[:k], alpha=alpha)
            return c.p_value if c is not None and math.isfinite(c.p_value) else 1.0

    first: int | None = None
    for k in reversed(checkpoints):
        if pvalue(k) < alpha:
            first = k
        else:
            break
    return first


def sessions_for_power(impressions: Sequence[Impression], experiment: Experiment, *, power: float = 0.8,
                       alpha: float = 0.05, primary: str = "ctr", resamples: int = 200,
                       max_sessions: int | None = None, seed: int = 0,
                       interleave_test: Literal["sign", "credit"] = "sign") -> PowerEstimate:
    """How many searches the experiment needs so that its test is significant, in the direction the
    whole run shows, with probability ``power``: a cluster bootstrap over users.

    One run's "first time p stayed below alpha" (``sessions_to_significance``) is a single noisy
    path; this asks instead how often a fresh experiment of n searches would decide. Each resample
    draws users with replacement (each draw a new unit, all of its searches kept, so within-user
    correlation stays) until n searches, and runs the experiment's own test on them (A/B: per-user
    Welch on ``primary``; interleaving: the per-search sign test, or with ``interleave_test="credit"``
    a one-sample t-test of each search's click difference, clicks on B's documents minus clicks on
    A's, which also counts by how many clicks a team won). The smallest n with estimated power
    >= ``power`` is found by doubling then bisection over n (the same random draws at every n, so the
    curve is smooth). ``max_sessions`` defaults to 4x the searches observed.
    """
    from scipy import stats

    imps, _ = experiment_impressions(impressions, experiment)
    if len(imps) < 2:
        raise DataError(f"experiment {experiment.id!r} has too little traffic to estimate power ({len(imps)})")
    units = encode_units([i.unit for i in imps])
    by_unit = [np.flatnonzero(units == u) for u in range(int(units.max()) + 1)]
    if experiment.mode == "interleave" and interleave_test == "credit":
        credit = np.array([credit_b(i) for i in imps], dtype=float)
        direction = 1 if credit.mean() >= 0 else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:  # per-search test: draws unused
            x = credit[rows]
            return bool(np.ptp(x) > 0 and x.mean() * direction > 0 and stats.ttest_1samp(x, 0.0).pvalue < alpha)
    elif experiment.mode == "interleave":
        outcome = np.array([outcome_b(i) for i in imps])
        wb, wa = int((outcome > 0).sum()), int((outcome < 0).sum())
        direction = 1 if wb >= wa else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:  # per-search test: draws unused
            o = outcome[rows]
            b, a = int((o > 0).sum()), int((o < 0).sum())
            return bool(a + b and (b - a) * direction > 0 and sign_test_counts(a, b) < alpha)
    else:
        y, arm, _ = ab_arrays(imps, experiment, primary, None)
        full = arm_test(y, arm, units, alpha=alpha)
        sign = -1 if primary in LOWER_IS_BETTER else 1
        direction = 1 if full is None or sign * full.diff.value >= 0 else -1

        def significant(rows: np.ndarray, draw: np.ndarray) -> bool:
            c = arm_test(y[rows], arm[rows], draw, alpha=alpha)
            return bool(c is not None and math.isfinite(c.p_value) and c.p_value < alpha
                        and sign * c.diff.value * direction > 0)

    rng = np.random.default_rng(seed)
    cap = max_sessions or 4 * len(imps)
    # one long sequence of user draws per resample, cut at n searches: common random numbers over n
    sizes = np.array([len(rows) for rows in by_unit])
    sequences = []
    for _ in range(resamples):
        picked = rng.integers(0, len(by_unit), size=max(1, int(2 * cap / sizes.mean())))
        while sizes[picked].sum() < cap:  # rarely: an unlucky run of light users
            picked = np.concatenate([picked, rng.integers(0, len(by_unit), size=len(picked))])
        rows = np.concatenate([by_unit[u] for u in picked])
        draw = np.concatenate([np.full(len(by_unit[u]), k) for k, u in enumerate(picked)])
        sequences.append((rows, draw))
    curve: dict[int, float] = {}

    def estimate(n: int) -> float:
        if n not in curve:
            curve[n] = float(np.mean([significant(rows[:n], draw[:n]) for rows, draw in sequences]))
        return curve[n]

    low, high = 0, max(10, min(cap, 20))
    while estimate(high) < power:
        if high >= cap:
            return PowerEstimate(None, power, alpha, resamples, direction, dict(sorted(curve.items())))
        low, high = high, min(cap, 2 * high)
    while high - low > max(1, high // 50):  # ~2% resolution
        mid = (low + high) // 2
        if estimate(mid) >= power:
            high = mid
        else:
            low = mid
    return PowerEstimate(high, power, alpha, resamples, direction, dict(sorted(curve.items())))
