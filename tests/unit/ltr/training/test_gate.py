"""The promotion gate's rule on fake evaluations, and the record of its decisions kept with the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridrank.config import GateConfig
from hybridrank.errors import ModelError
from ltr.training.gate import (
    NO_HELD_OUT,
    PASSED,
    REFUSED,
    GateResult,
    decide,
    forced,
    latest_decision,
    read_decisions,
    record_decision,
)

DOCS = [f"d{i}" for i in range(10)]


def _run(relevant_rank: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each query's ten documents with its relevant ``d0`` at the given rank (1-based)."""
    run = {}
    for qid, rank in relevant_rank.items():
        order = [d for d in DOCS if d != "d0"]
        order.insert(rank - 1, "d0")
        run[qid] = {d: float(len(order) - i) for i, d in enumerate(order)}
    return run


def _qrels(n: int) -> dict[str, dict[str, int]]:
    return {f"q{i}": {"d0": 1} for i in range(n)}


def _decide(model: dict[str, int], baselines: dict[str, dict[str, int]], n: int, **rule: object) -> GateResult:
    return decide(_qrels(n), _run(model), {name: _run(ranks) for name, ranks in baselines.items()},
                  GateConfig.model_validate(rule), model_id="m1", index="idx", variant="default",
                  source="fake:test qrels")


def test_a_model_clearly_better_than_the_best_baseline_passes_with_its_numbers() -> None:
    n = 40
    model = {f"q{i}": 1 for i in range(n)}
    result = _decide(model, {"bm25": {f"q{i}": 4 for i in range(n)},
                             "linear": {f"q{i}": 2 if i % 2 else 3 for i in range(n)}}, n)
    assert result.outcome == PASSED and result.promoted and not result.forced
    assert result.best_baseline == "linear"  # the better of the two on these queries
    assert result.model == pytest.approx(1.0)
    assert result.baselines["bm25"] < result.baselines["linear"] == pytest.approx(result.baseline)
    assert result.delta == pytest.approx(result.model - result.baseline)
    assert result.queries == n and result.p_value is not None and result.p_value < 1e-6
    assert result.win_tie_loss == {"W": n, "T": 0, "L": 0}
    assert "NDCG@10 1.0000 vs best baseline linear" in result.summary()


def test_a_model_worse_than_the_best_baseline_is_refused_with_the_numbers() -> None:
    n = 30
    result = _decide({f"q{i}": 3 for i in range(n)}, {"rrf": {f"q{i}": 5 for i in range(n)},
                                                      "linear": {f"q{i}": 1 if i < 20 else 4 for i in range(n)}}, n)
    assert result.outcome == REFUSED and not result.promoted
    assert result.best_baseline == "linear" and result.delta is not None and result.delta < 0
    assert result.p_value is not None and result.p_value > 0.5  # one-sided: no evidence the model is better
    summary = result.summary()
    assert "gate refused" in summary and "not better than the best baseline" in summary
    assert f"delta {result.delta:+.4f}" in summary and f"{n} held-out queries" in summary
    assert "fake:test qrels" in summary


def test_ahead_on_the_mean_but_not_significant_is_refused_unless_alpha_is_one() -> None:
    n = 30
    # better on 8 queries, worse on 6, tied on the rest: a small, noisy lead
    model = {f"q{i}": 1 if i < 8 else (4 if i < 14 else 2) for i in range(n)}
    linear = {f"q{i}": 2 for i in range(n)}
    strict = _decide(model, {"linear": linear}, n)
    assert strict.outcome == REFUSED and strict.delta is not None and strict.delta > 0
    assert strict.p_value is not None and strict.p_value >= 0.05
    assert "not significantly" in strict.reason
    lenient = _decide(model, {"linear": linear}, n, alpha=1.0)
    assert lenient.outcome == PASSED  # alpha = 1: ahead on the mean is enough


def test_too_few_held_out_queries_is_no_evidence() -> None:
    n = 5
    result = _decide({f"q{i}": 1 for i in range(n)}, {"linear": {f"q{i}": 9 for i in range(n)}}, n)
    assert result.outcome == NO_HELD_OUT and not result.promoted
    assert "only 5 held-out judged queries, the gate needs 20" in result.summary()
    assert _decide({f"q{i}": 1 for i in range(n)}, {"linear": {f"q{i}": 9 for i in range(n)}}, n,
                   min_queries=5).outcome == PASSED


def test_the_metric_and_the_test_are_the_configured_ones() -> None:
    n = 25
    model = {f"q{i}": 1 for i in range(n)}
    result = _decide(model, {"linear": {f"q{i}": 2 for i in range(n)}}, n, metric="mrr@10", stat_test="fisher")
    assert (result.metric, result.stat_test, result.outcome) == ("mrr@10", "fisher", PASSED)
    assert result.model == pytest.approx(1.0) and result.baseline == pytest.approx(0.5)
    assert "MRR@10" in result.summary() and "randomization" in result.summary()


def test_forcing_marks_a_refusal_and_leaves_a_pass_alone() -> None:
    n = 20
    refused = _decide({f"q{i}": 5 for i in range(n)}, {"linear": {f"q{i}": 1 for i in range(n)}}, n)
    overridden = forced(refused)
    assert overridden.forced and overridden.promoted and overridden.outcome == REFUSED
    assert "PROMOTED ANYWAY (--force)" in overridden.summary()
    passed = _decide({f"q{i}": 1 for i in range(n)}, {"linear": {f"q{i}": 5 for i in range(n)}}, n)
    assert forced(passed) is passed


def test_decisions_are_kept_with_the_model_latest_last(tmp_path: Path) -> None:
    n = 20
    assert read_decisions(tmp_path) == [] and latest_decision(tmp_path) is None
    first = _decide({f"q{i}": 5 for i in range(n)}, {"linear": {f"q{i}": 1 for i in range(n)}}, n)
    record_decision(tmp_path, first)
    second = forced(first)
    record_decision(tmp_path, second)
    assert [d["forced"] for d in read_decisions(tmp_path)] == [False, True]
    assert latest_decision(tmp_path) == second
    assert latest_decision(tmp_path, index="other") is None
    (tmp_path / "gate.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"gate\.json is unreadable"):
        read_decisions(tmp_path)


def test_the_rule_is_configurable_and_checked() -> None:
    rule = GateConfig()
    assert (rule.metric, rule.alpha, rule.stat_test, rule.min_queries) == ("ndcg@10", 0.05, "student", 20)
    assert rule.baselines == ["bm25", "es", "rrf", "linear"]
    with pytest.raises(ValueError, match="at least one baseline"):
        GateConfig(baselines=[])
    with pytest.raises(ValueError):
        GateConfig.model_validate({"alpha": 0})
