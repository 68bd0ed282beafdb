"""``evaluate --cv-folds`` trains its models with ``train``'s options: which reach which model type, run names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ltr.evaluation import learned
from ltr.training import registry


def test_cv_models_get_the_training_options_their_type_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: dict[str, Any] = {}

    def fake_cv(log: object, *, folds: int, config: Any, remove_query_doc: bool) -> dict[str, dict[str, float]]:
        configs[config.model_type] = config
        return {"q": {"d": 1.0}}

    monkeypatch.setattr(learned, "log_split", lambda *a, **k: object())
    monkeypatch.setattr(learned, "cross_validated_run", fake_cv)
    monkeypatch.setattr(registry.ModelRegistry, "from_settings", classmethod(lambda cls, settings: None))
    options = {"lightgbm_params": {"num_leaves": 7}, "param_grid": [{"num_leaves": 7}, {"num_leaves": 31}],
               "monotone": False, "fold_ensemble": True, "fusion_blend": 0.7}
    runs = learned.saved_and_cv_runs(
        SimpleNamespace(), SimpleNamespace(index="i"), SimpleNamespace(), "test", {"q": "text"},  # type: ignore[arg-type]
        request_time=None, cv_folds=5, cv_model_types=("lightgbm", "listnet"), cv_options=options,  # type: ignore[arg-type]
        say=lambda _: None)
    assert list(runs) == ["lightgbm (5-fold CV, num_leaves=7, grid of 2, fold ensemble, fusion blend 0.7)",
                          "listnet (5-fold CV, fusion blend 0.7)"]
    lgb, listnet = configs["lightgbm"], configs["listnet"]
    assert (lgb.fold_ensemble, lgb.fusion_blend, lgb.monotone) == (True, 0.7, False)
    assert lgb.lightgbm_params == {"num_leaves": 7} and lgb.param_grid == [{"num_leaves": 7}, {"num_leaves": 31}]
    assert listnet.param_grid == []
    assert (listnet.fold_ensemble, listnet.fusion_blend, listnet.lightgbm_params) == (False, 0.7, {})
