"""Simulated users: DESIGN.md's click rates, the freshness preference, per-user propensity, dwell times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ltr.clicks.simulated_users import (
    EXAMINATION,
    FreshnessPreference,
    PositionBasedModel,
    ShownDoc,
    attractiveness,
    user_propensity,
)


def test_attractiveness_follows_design() -> None:
    assert [round(attractiveness(g), 4) for g in range(5)] == [0.1, 0.16, 0.28, 0.52, 1.0]
    assert attractiveness(7) == 1.0  # grades above 4 clip
    assert attractiveness(-1) == 0.1


@pytest.mark.parametrize("grade", [0, 2, 4])
def test_pbm_click_rates_converge_to_design(grade: int) -> None:
    model = PositionBasedModel(dwell=False)
    shown = [ShownDoc(f"d{i}", i + 1, grade) for i in range(10)]
    rng = np.random.default_rng(7)
    n = 40_000
    counts = np.zeros(10)
    for _ in range(n):
        for click in model.clicks(shown, rng):
            counts[click.position - 1] += 1
    expected = np.array(EXAMINATION) * attractiveness(grade)
    rates = counts / n
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(rates - expected) < 4 * sigma + 1e-9), (rates, expected)
    assert model.click_probability(ShownDoc("x", 11, 4)) == 0.0  # below the examined ranks


def test_freshness_preference_favours_recent_documents() -> None:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    pref = FreshnessPreference(half_life_days=365, weight=0.8, as_of=now)
    assert pref.factor(now) == pytest.approx(1.0)
    assert pref.factor(now - timedelta(days=365)) == pytest.approx(0.2 + 0.8 * 0.5)
    assert pref.factor(None) == pytest.approx(0.2)  # unknown age: not seen as recent
    with pytest.raises(ValueError):
        FreshnessPreference(half_life_days=0, weight=0.5)

    fresh_model = PositionBasedModel(freshness=pref, dwell=False)
    plain = PositionBasedModel(dwell=False)
    recent = ShownDoc("new", 1, 2, now - timedelta(days=10))
    old = ShownDoc("old", 1, 2, now - timedelta(days=20 * 365))
    assert fresh_model.click_probability(recent) > fresh_model.click_probability(old)
    assert plain.click_probability(recent) == plain.click_probability(old)

    # over many sessions the recent document (shown second) out-clicks the old one (shown first)
    shown = [ShownDoc("old", 1, 2, old.timestamp), ShownDoc("new", 2, 2, recent.timestamp)]
    rng = np.random.default_rng(3)
    clicks = {"old": 0, "new": 0}
    for _ in range(20_000):
        for c in fresh_model.clicks(shown, rng):
            clicks[c.doc_id] += 1
    assert clicks["new"] > clicks["old"] * 1.5
    assert PositionBasedModel(freshness=FreshnessPreference(30, 0.0)).needs_timestamps is False


def test_user_propensity_is_fixed_per_user_with_mean_one_and_the_asked_spread() -> None:
    assert user_propensity("u0001", 0.0) == 1.0
    assert user_propensity("u0001", 1.0) == user_propensity("u0001", 1.0)  # the same person every run
    draws = np.array([user_propensity(f"u{i:05d}", 1.0) for i in range(20_000)])
    assert draws.min() > 0 and abs(draws.mean() - 1.0) < 0.03 and abs(draws.std() - 1.0) < 0.05
    # a user's propensity scales every click probability, capped at 1
    model = PositionBasedModel(propensity_sd=1.0, dwell=False)
    doc = ShownDoc("d", 1, 3)
    assert model.click_probability(doc, 2.0) == pytest.approx(2 * model.click_probability(doc))
    assert model.click_probability(ShownDoc("d", 1, 4), 5.0) == 1.0
    heavy = max((f"u{i:05d}" for i in range(200)), key=lambda u: user_propensity(u, 1.0))
    light = min((f"u{i:05d}" for i in range(200)), key=lambda u: user_propensity(u, 1.0))
    rng = np.random.default_rng(0)
    shown = [ShownDoc(f"d{i}", i + 1, 2) for i in range(10)]
    n_heavy = sum(len(model.clicks(shown, rng, heavy)) for _ in range(500))
    n_light = sum(len(model.clicks(shown, rng, light)) for _ in range(500))
    assert n_heavy > 5 * max(n_light, 1)
    with pytest.raises(ValueError):
        PositionBasedModel(propensity_sd=-1.0)


def test_dwell_is_longer_for_better_results() -> None:
    model = PositionBasedModel()
    rng = np.random.default_rng(1)
    dwell: dict[int, list[float]] = {0: [], 4: []}
    for _ in range(3000):
        for grade in (0, 4):
            for c in model.clicks([ShownDoc("d", 1, grade)], rng):
                assert c.dwell_ms is not None and c.dwell_ms > 0
                dwell[grade].append(c.dwell_ms)
    assert np.median(dwell[4]) > 2 * np.median(dwell[0])

