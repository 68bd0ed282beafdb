"""The randomisation test: the A/B p-value from re-assigning the users to the arms.

The bucketed comparison (``ltr.experiments.bucketed``) reports a randomisation p-value of its Welch
t statistic: ``PERMUTATIONS`` re-assignments of the users to the arms, arm sizes kept, and the share
that gives a statistic at least as extreme; above ``RANDOMIZATION_MAX_UNITS`` users the t
approximation is used instead, where it is accurate. Re-assigning users is exactly what a
re-bucketing does, so the randomisation test holds its level by construction, whatever the skew of
per-user CTRs and however few the users; on simulated traffic the two tests rejected about equally
often (A/A .054 randomisation vs .053 t, the same 4 x 1,000 re-bucketings,
bench/results/feedback_loop_aa.json), so the gain is a guarantee, not a measured correction. The
planning helpers (``ltr.experiments.power``) keep the t approximation: they run the test thousands
of times.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

PERMUTATIONS = 2000  # re-assignments of users per A/B p-value (Monte Carlo error ~.005 at p = .05)
# above this many users the t approximation is used instead: it is accurate there, and re-assigning
# 100,000 users 2,000 times takes ~14 s per metric
RANDOMIZATION_MAX_UNITS = 20_000


def randomization_p(control: np.ndarray, treatment: np.ndarray, *, permutations: int = PERMUTATIONS,
                    seed: int | None = None) -> float:
    """Two-sided randomisation p-value of Welch's t (``scipy.stats.permutation_test``): how often
    re-assigning the units to the arms, arm sizes kept, gives a statistic at least as extreme.

    The re-assignments are drawn from a generator seeded by the data itself (unless ``seed`` is
    given): the same data gives the same p-value, and different data - another bucketing of the same
    users - gets independent re-assignments. A fixed seed reused one set of 2,000 index permutations
    for every experiment of the same size, so that set's Monte Carlo error could not average out over
    experiments. Measured on the same six A/A traffic runs x 2,000 re-bucketings it made no
    difference: .0522 with seed 0 and .0522 data-seeded (bench/results/feedback_loop_aa_more.json,
    feedback_loop_aa_dataseed.json)."""
    from scipy import stats

    if control.size < 2 or treatment.size < 2:
        return math.nan
    if np.ptp(np.concatenate([control, treatment])) == 0:
        return 1.0  # every unit has the same value: no assignment is more extreme than another

    def welch_t(t: np.ndarray, c: np.ndarray, axis: int) -> np.ndarray:
        return np.asarray(stats.ttest_ind(t, c, equal_var=False, axis=axis).statistic)

    # batches of re-assignments bound the memory: ~4M values at a time, whatever the number of units
    batch = max(1, min(permutations, 4_000_000 // (control.size + treatment.size)))
    result = stats.permutation_test((treatment, control), welch_t, permutation_type="independent",
                                    vectorized=True, n_resamples=permutations, batch=batch,
                                    alternative="two-sided", rng=np.random.default_rng(
                                        _data_seed(control, treatment) if seed is None else seed))
    return float(result.pvalue)


def _data_seed(control: np.ndarray, treatment: np.ndarray) -> int:
    digest = hashlib.sha256(np.ascontiguousarray(control, dtype=np.float64).tobytes() + b"|"
                            + np.ascontiguousarray(treatment, dtype=np.float64).tobytes()).digest()
    return int.from_bytes(digest[:8], "little")
