"""Cascade users and the model registry: each model's probabilities, relative levels, simulated sessions."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.clicks.cascade_users import CascadeModel, cascade_presets
from ltr.clicks.simulated_users import EXAMINATION, PositionBasedModel, ShownDoc, attractiveness, relative_level
from ltr.clicks.user_models import CLICK_MODELS, make_click_model


def test_presets_pin_the_literature_tables() -> None:
    presets = cascade_presets()
    assert presets["perfect"] == ((0.0, 0.2, 0.4, 0.8, 1.0), (0.0,) * 5)
    assert presets["navigational"] == ((0.05, 0.3, 0.5, 0.7, 0.95), (0.2, 0.3, 0.5, 0.7, 0.9))
    assert presets["informational"] == ((0.4, 0.6, 0.7, 0.8, 0.9), (0.1, 0.2, 0.3, 0.4, 0.5))
    click, stop = presets["cascade"]
    assert [round(c, 4) for c in click] == [0.1, 0.16, 0.28, 0.52, 1.0] and stop == (1.0,) * 5
    assert set(CLICK_MODELS) == {"position-based", *presets}


def test_relative_level_maps_binary_relevant_to_the_top() -> None:
    assert [relative_level(g, 1) for g in (0, 1)] == [0, 4]
    assert [relative_level(g, 2) for g in (0, 1, 2)] == [0, 2, 4]
    assert [relative_level(g, 4) for g in range(5)] == [0, 1, 2, 3, 4]
    assert relative_level(-1, 3) == 0 and relative_level(5, 4) == 4 and relative_level(1, 0) == 0


def _rates(model: CascadeModel | PositionBasedModel, levels: list[int], n: int = 50_000,
           seed: int = 3) -> np.ndarray:
    clicks = model.click_matrix(np.tile(levels, (n, 1)), np.random.default_rng(seed))
    return np.asarray(clicks.mean(axis=0))


@pytest.mark.parametrize("name", ["perfect", "navigational", "informational", "cascade"])
def test_rank_one_clicks_at_the_tables_rate(name: str) -> None:
    click, _ = cascade_presets()[name]
    model = make_click_model(name)
    assert isinstance(model, CascadeModel)
    n = 40_000
    for level in range(5):
        rate = _rates(model, [level, 0], n)[0]
        sigma = np.sqrt(click[level] * (1 - click[level]) / n)
        assert abs(rate - click[level]) <= 4 * sigma + 1e-9, (name, level, rate)


def test_navigational_stops_after_a_relevant_click() -> None:
    model = make_click_model("navigational")
    rates = _rates(model, [4, 4])
    # rank 2 is examined unless rank 1 was clicked and the user stopped: 1 - .95 * .9
    expected = (1 - 0.95 * 0.9) * 0.95
    assert rates[1] == pytest.approx(expected, abs=0.01)


def test_perfect_never_clicks_irrelevant_and_clicks_every_top_result() -> None:
    model = make_click_model("perfect")
    clicks = model.click_matrix(np.tile([0, 4, 0, 4, 0], (5_000, 1)), np.random.default_rng(1))
    assert not clicks[:, [0, 2, 4]].any()
    assert clicks[:, [1, 3]].all()  # never stops, always clicks level 4


def test_cascade_clicks_at_most_once() -> None:
    clicks = make_click_model("cascade").click_matrix(np.tile([4, 3, 4, 2], (5_000, 1)), np.random.default_rng(2))
    assert clicks.sum(axis=1).max() == 1
    assert clicks[:, 0].all()  # level 4 at rank 1: attractiveness 1, then stop


def test_position_based_matrix_matches_design() -> None:
    rates = _rates(PositionBasedModel(dwell=False), [4] * 10)
    assert np.allclose(rates, np.array(EXAMINATION) * attractiveness(4), atol=0.01)


def test_sessions_and_matrix_share_one_model() -> None:
    model = make_click_model("informational", dwell=False)
    shown = [ShownDoc(f"d{i}", i + 1, level) for i, level in enumerate([4, 0, 2, 0, 4])]
    per_session = [{c.position for c in model.clicks(shown, np.random.default_rng(s))} for s in range(200)]
    matrix = [set(np.flatnonzero(model.click_matrix(np.array([[4, 0, 2, 0, 4]]), np.random.default_rng(s))[0]) + 1)
              for s in range(200)]
    assert per_session == matrix


def test_propensity_spreads_users_and_clips() -> None:
    model = make_click_model("navigational", propensity_sd=1.0)
    assert isinstance(model, CascadeModel)
    levels = np.tile([0, 0, 0], (20_000, 1))
    low = model.click_matrix(levels, np.random.default_rng(4), np.full(20_000, 0.5)).mean()
    high = model.click_matrix(levels, np.random.default_rng(4), np.full(20_000, 2.0)).mean()
    assert high > 3 * low
    assert model.click_matrix(np.array([[4]]), np.random.default_rng(0), np.array([5.0]))[0, 0]


def test_bad_models_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown click model 'nope'"):
        make_click_model("nope")
    from ltr.clicks.simulated_users import FreshnessPreference

    with pytest.raises(ValueError, match="no freshness preference"):
        make_click_model("navigational", freshness=FreshnessPreference(30, 0.5))
    with pytest.raises(ValueError, match="5 probabilities"):
        CascadeModel("x", (0.5,), (0.5,) * 5)
