"""The one path into service: a model is stored, checked against the live features, then promoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridrank.config import IndexConfig, Settings
from hybridrank.errors import ContractMismatch, PromotionRefused
from ltr.training.gate import NO_HELD_OUT, GateResult, read_decisions
from ltr.training.promotion import check_log_serves, promote_model, store_model
from ltr.training.registry import ModelRegistry
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import NAMES, synthetic_log


def _settings(home: Path, features: list[str]) -> Settings:
    return Settings(home=home, compile_models=False, indices={"idx": IndexConfig(features=features)})


def test_a_log_of_other_features_is_refused_before_training(tmp_path: Path) -> None:
    log = synthetic_log(n_queries=4, per_query=5)
    check_log_serves(_settings(tmp_path, list(NAMES)), "idx", log)  # the log's own features: fine
    with pytest.raises(ContractMismatch, match="other features than index 'idx'"):
        check_log_serves(_settings(tmp_path, ["bm25_title"]), "idx", log)


def test_a_model_trained_elsewhere_is_stored_then_promoted_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    result = train_model(synthetic_log(), outside, config=TrainConfig(num_boost_round=20))
    model_id = result.contract.model_id
    settings = _settings(tmp_path / "home", list(NAMES))
    registry = ModelRegistry(settings.home)

    stored = store_model(registry, "idx", model_id, outside)
    assert stored == registry.model_dir("idx", model_id)
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in outside.iterdir())
    assert store_model(registry, "idx", model_id, stored) == stored  # already in the store: nothing copied

    with pytest.raises(ContractMismatch):
        promote_model(_settings(settings.home, ["bm25_title"]), "idx", model_id, force=True)
    assert registry.serving("idx", "default") is None  # a refused promotion changes nothing
    assert read_decisions(stored) == []  # the contract is checked before the gate even runs

    # no held-out judgments here (no Elasticsearch): only --force promotes, and the record says so
    promotion = promote_model(settings, "idx", model_id, "b", force=True)
    assert (promotion.change.previous, promotion.change.current) == (None, model_id)
    assert promotion.compiled is None  # compile_models = false
    assert registry.serving("idx", "b") == model_id
    assert promotion.gate.forced and promotion.gate.outcome == NO_HELD_OUT
    assert read_decisions(stored)[-1]["forced"] is True


def test_without_held_out_judgments_the_gate_refuses_and_says_so(tmp_path: Path) -> None:
    settings = _settings(tmp_path, list(NAMES))
    registry = ModelRegistry(settings.home)
    result = train_model(synthetic_log(), None, config=TrainConfig(num_boost_round=20),
                         model_store=lambda model_id: registry.model_dir("idx", model_id))
    model_id = result.contract.model_id
    with pytest.raises(PromotionRefused, match="no held-out judgments were given") as refused:
        promote_model(settings, "idx", model_id)
    gate = refused.value.gate
    assert isinstance(gate, GateResult) and gate.outcome == NO_HELD_OUT and "--force" in str(refused.value)
    assert registry.serving("idx") is None  # never silently passed
    [decision] = read_decisions(registry.model_dir("idx", model_id))
    assert decision["outcome"] == NO_HELD_OUT and decision["forced"] is False and decision["index"] == "idx"
