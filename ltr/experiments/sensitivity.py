"""How sensitive each comparison method is: sessions for 80% power, and the A/A rejection rate.

Every method is run on the same simulated traffic (``ltr.experiments.simulation``), ``replicates``
experiments of ``n`` searches at a time, vectorised:

- ``ab``: bucketed A/B by user, Welch's t on per-user CTR (``ltr.experiments.bucketed``'s test);
- ``ab_cuped``: the same after CUPED (Deng et al., WSDM 2013): each user's CTR minus
  θ·(their pre-experiment CTR − its mean), θ = cov/var pooled over both arms. The pre-experiment
  period is as many searches by the same users under the control ranker;
- interleaving credit rules (``ltr.experiments.credit``): ``team_draft``, ``team_draft_skip_prefix`` and
  ``team_draft_click_gap``.

``sessions_for_power``: the smallest n at which the method decides for the better ranker (p < α, the
effect in its direction) in at least 80% of the experiments, by doubling then bisection over n.
``aa_rate``: how often it rejects (p < α, either direction) when both rankers are equally good —
for A/B the same lists in both arms; for interleaving a ``null_pair`` (equal-level documents swapped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ltr.clicks.simulated_users import ClickModel
from ltr.experiments.credit import CREDIT_RULES, CreditRule, credit_test
from ltr.experiments.interleaved_lists import Interleavings
from ltr.experiments.simulation import Traffic, draw_traffic, per_user_means, session_propensity

AB_METHODS = ("ab", "ab_cuped")
METHODS: tuple[str, ...] = (*AB_METHODS, *CREDIT_RULES)
_CHUNK_SESSIONS = 400_000  # sessions simulated at once (memory: ~10 floats per rank each)
PValues = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Arena:
    """What the methods compare: control and treatment lists (levels per query and rank), their
    interleavings, the null interleavings, the users' click model and their propensity spread."""

    control: np.ndarray  # (queries, depth) levels
    treatment: np.ndarray
    interleaved: Interleavings
    null_interleaved: Interleavings  # control vs its null pair
    model: ClickModel
    propensity_sd: float = 0.0
    searches_per_user: float = 5.0

    def traffic(self, rng: np.random.Generator, replicates: int, n: int) -> Traffic:
        return draw_traffic(rng, replicates, n, self.control.shape[0], searches_per_user=self.searches_per_user,
                            propensity_sd=self.propensity_sd)


def _welch(values: np.ndarray, arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(two-sided Welch p, treatment − control) per row of per-user values (NaN = user absent)."""
    from scipy import stats

    def moments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.where(mask, values, np.nan)
        n = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(x, axis=1) / n
            var = np.nansum((x - mean[:, None]) ** 2, axis=1) / (n - 1)
        return n, mean, var

    present = ~np.isnan(values)
    n1, m1, v1 = moments(present & arm)
    n0, m0, v0 = moments(present & ~arm)
    with np.errstate(invalid="ignore", divide="ignore"):
        se2 = v1 / n1 + v0 / n0
        t = (m1 - m0) / np.sqrt(se2)
        df = se2**2 / ((v1 / n1) ** 2 / (n1 - 1) + (v0 / n0) ** 2 / (n0 - 1))
    p = 2 * stats.t.sf(np.abs(t), df)
    return np.where(np.isfinite(p), p, 1.0), m1 - m0


def ab_pvalues(arena: Arena, *, cuped: bool, null: bool) -> PValues:
    """The A/B test's (p, effect) of ``replicates`` experiments of ``n`` searches each."""

    def run(n: int, replicates: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        traffic = arena.traffic(rng, replicates, n)
        arm = rng.random((replicates, traffic.users)) < 0.5  # the user's bucket
        treated = np.take_along_axis(arm, traffic.user, axis=1).ravel()
        q = traffic.query.ravel()
        after = arena.control if null else arena.treatment
        levels = np.where(treated[:, None], after[q], arena.control[q])
        propensity = session_propensity(traffic)
        clicks = arena.model.click_matrix(levels, rng, propensity).sum(axis=1).astype(float)
        everyone = np.ones(clicks.shape, dtype=bool)
        y, _ = per_user_means(clicks, traffic, everyone)
        if cuped:
            pre_q = rng.integers(0, arena.control.shape[0], size=(replicates, n))
            pre_user = rng.integers(0, traffic.users, size=(replicates, n))
            pre = Traffic(replicates, n, traffic.users, pre_user, pre_q, traffic.propensity)
            pre_clicks = arena.model.click_matrix(arena.control[pre_q.ravel()], rng,
                                                  session_propensity(pre)).sum(axis=1).astype(float)
            x, _ = per_user_means(pre_clicks, pre, everyone)
            x_mean = np.nanmean(x, axis=1, keepdims=True)
            x = np.where(np.isnan(x), x_mean, x)  # a user new in this period: the covariate's mean
            y = _cuped(y, x)
        return _welch(y, arm)

    return run


def _cuped(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y − θ(x − mean x) per row, θ = cov(x, y) / var(x) over the users present (pooled over arms)."""
    present = ~np.isnan(y)
    n = present.sum(axis=1, keepdims=True)
    xm = np.where(present, x, 0).sum(axis=1, keepdims=True) / n
    ym = np.nansum(y, axis=1, keepdims=True) / n
    cov = np.where(present, (x - xm) * (y - ym), 0).sum(axis=1, keepdims=True)
    var = np.where(present, (x - xm) ** 2, 0).sum(axis=1, keepdims=True)
    theta = np.where(var > 0, cov / np.where(var > 0, var, 1), 0.0)
    return y - theta * (x - xm)


def interleave_pvalues(arena: Arena, rule: CreditRule, *, null: bool) -> PValues:
    """The credit rule's (p, effect) of ``replicates`` interleaving experiments of ``n`` searches each."""
    lists = arena.null_interleaved if null else arena.interleaved

    def run(n: int, replicates: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        traffic = arena.traffic(rng, replicates, n)
        q = traffic.query.ravel()
        s = rng.integers(0, lists.levels.shape[1], size=q.size)  # the search's coin sequence
        clicks = arena.model.click_matrix(lists.levels[q, s], rng, session_propensity(traffic))
        k = clicks.shape[1]
        return credit_test(rule, clicks.reshape(replicates, n, k), lists.teams[q, s].reshape(replicates, n, k),
                           lists.shared[q].reshape(replicates, n, k))

    return run


def method_pvalues(arena: Arena, method: str, *, null: bool = False) -> PValues:
    if method in AB_METHODS:
        return ab_pvalues(arena, cuped=method == "ab_cuped", null=null)
    if method in CREDIT_RULES:
        return interleave_pvalues(arena, method, null=null)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _chunked(pvalues: PValues, n: int, replicates: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    step = max(1, _CHUNK_SESSIONS // max(n, 1))
    parts = [pvalues(n, min(step, replicates - r), rng) for r in range(0, replicates, step)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([e for _, e in parts])


def power(pvalues: PValues, n: int, *, replicates: int, rng: np.random.Generator, alpha: float = 0.05) -> float:
    """Share of ``replicates`` experiments of ``n`` searches that decide for the treatment."""
    p, effect = _chunked(pvalues, n, replicates, rng)
    return float(np.mean((p < alpha) & (effect > 0)))


def scaled_sessions(pvalues: PValues, *, target: float = 0.8, pilot: int = 4000, replicates: int = 200,
                    seed: int = 0, alpha: float = 0.05, cap: int = 1_000_000) -> tuple[int | None, dict[int, float]]:
    """(sessions for ``target`` power scaled from a pilot (``pilot_guess``), the power measured there):
    for methods whose sessions run to tens of thousands, where bisection would simulate too many.
    None (and no measurement) when the guess exceeds ``cap``: the effect is too small to plan for."""
    n = pilot_guess(pvalues, target=target, n=pilot, replicates=replicates, seed=seed, alpha=alpha)
    if n > cap:
        return None, {}
    measured = power(pvalues, n, replicates=replicates, rng=np.random.default_rng([seed, n]), alpha=alpha)
    return n, {n: measured}


def pilot_guess(pvalues: PValues, *, target: float = 0.8, n: int = 1000, replicates: int = 200, seed: int = 0,
                alpha: float = 0.05) -> int:
    """A first guess of the sessions for ``target`` power: the test statistic grows like √n, so the mean
    z of a pilot at ``n`` searches scales to the n where it reaches z(1−α/2) + z(target)."""
    from scipy import stats

    p, effect = _chunked(pvalues, n, replicates, np.random.default_rng([seed, 1, n]))
    z = float(np.mean(np.sign(effect) * stats.norm.isf(np.clip(p, 1e-300, 1.0) / 2)))
    needed = (stats.norm.isf(alpha / 2) + stats.norm.ppf(target)) / max(z, 1e-3)
    return max(8, round(n * needed**2))


def sessions_for_power(pvalues: PValues, *, target: float = 0.8, replicates: int = 400, seed: int = 0,
                       cap: int = 400_000, alpha: float = 0.05) -> tuple[int | None, dict[int, float]]:
    """(smallest n with power >= ``target`` to ~3%, or None below ``cap``; the power curve measured).

    Doubling from half a pilot's guess (``pilot_guess``) until the power is reached, then bisection;
    each point is ``replicates`` fresh experiments."""
    curve: dict[int, float] = {}

    def at(n: int) -> float:
        if n not in curve:
            curve[n] = power(pvalues, n, replicates=replicates, rng=np.random.default_rng([seed, n]), alpha=alpha)
        return curve[n]

    low, high = 0, min(cap, max(8, pilot_guess(pvalues, target=target, seed=seed, alpha=alpha) // 2))
    while at(high) < target:
        if high >= cap:
            return None, dict(sorted(curve.items()))
        low, high = high, min(cap, 2 * high)
    while high - low > max(2, high // 32):
        mid = (low + high) // 2
        if at(mid) >= target:
            high = mid
        else:
            low = mid
    return high, dict(sorted(curve.items()))


def aa_rate(pvalues: PValues, n: int, *, runs: int = 2000, seed: int = 1, alpha: float = 0.05) -> float:
    """Share of ``runs`` null experiments of ``n`` searches with p < ``alpha`` (either direction)."""
    p, _ = _chunked(pvalues, n, runs, np.random.default_rng(seed))
    return float(np.mean(p < alpha))
