"""The position-based click model: EM recovers DESIGN.md's examination and attractiveness."""

from __future__ import annotations

import pytest

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression, Shown
from ltr.clicks.pbm import DESIGN_EXAMINATION, fit_pbm, normalize_query
from tests.support.click_logs import T0, simulate


def test_normalize_query_strips_lowercases_and_collapses() -> None:
    assert normalize_query("  Covid \t Vaccine\nSafety ") == "covid vaccine safety"


def test_em_recovers_design_examination_relative_to_rank_one() -> None:
    impressions, _ = simulate()
    model = fit_pbm(impressions)
    assert model.anchor_position == 1 and model.examination[1] == 1.0
    truth = [e / DESIGN_EXAMINATION[0] for e in DESIGN_EXAMINATION]
    for pos, expected in enumerate(truth, start=1):
        assert model.examination[pos] == pytest.approx(expected, abs=0.05), (pos, model.examination)
    assert model.varied_pairs == 1.0
    assert model.observations == 30 * 200 * 10


def test_em_attractiveness_is_click_probability_at_rank_one() -> None:
    impressions, alpha = simulate(queries=10, per_query=400, seed=3)
    model = fit_pbm(impressions)
    errors = [abs(model.attractiveness[pair] - DESIGN_EXAMINATION[0] * a) for pair, a in alpha.items()]
    assert sum(errors) / len(errors) < 0.06


def test_fixed_ranking_reports_no_position_variation() -> None:
    impressions, _ = simulate(queries=5, per_query=50, shuffle=False)
    assert fit_pbm(impressions).varied_pairs == 0.0


def test_fit_refuses_no_clicks_and_no_impressions() -> None:
    quiet = [Impression("r1", T0, "i", "q", [Shown("a", 1), Shown("b", 2)])]
    with pytest.raises(DataError, match="clicked"):
        fit_pbm(quiet)
    with pytest.raises(DataError, match="no impressions"):
        fit_pbm([])

