"""Compiled LightGBM scoring: same scores as LightGBM's predict, a checked cache, and a fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.pipeline import FeaturePipeline
from ltr.training import compiled
from ltr.training.compiled import CompilingScorer, compile_model, probe_matrix, split_thresholds
from ltr.training.model import RankingModel
from ltr.training.scorer import file_sha256
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import CFG, NAMES, synthetic_log


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "m"
    train_model(synthetic_log(n_queries=60), out, config=TrainConfig(num_boost_round=60, cv_folds=0))
    return out


def windows(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.column_stack([rng.normal(5, 2, 500), rng.uniform(0, 1, 500), rng.integers(1, 30, 500).astype(float)])
    w[rng.random(w.shape) < 0.2] = np.nan  # missing values take the model's default branches
    return w


def test_compiled_model_scores_like_lightgbm_and_is_used(model_dir: Path, tmp_path: Path) -> None:
    plain = RankingModel.load(model_dir, FeaturePipeline(NAMES, CFG))
    fast = RankingModel.load(model_dir, FeaturePipeline(NAMES, CFG), compile_dir=tmp_path)
    assert fast.wait_compiled(timeout=120)
    assert (plain.backend, fast.backend) == ("lightgbm", "compiled")
    w = windows()
    np.testing.assert_allclose(fast.score(w), plain.score(w), rtol=0, atol=1e-12)
    assert len(list(tmp_path.glob("*.o"))) == 1 and len(list(tmp_path.glob("*.sha256"))) == 1
    assert not list(tmp_path.glob(".*"))  # nothing half-written


def test_probe_rows_reach_both_sides_of_every_split(model_dir: Path) -> None:
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    cuts = split_thresholds(booster)
    assert any(len(c) for c in cuts)
    probe = probe_matrix(cuts)
    for j, c in enumerate(cuts):
        column = probe[:, j]
        assert np.isnan(column).any()
        if len(c):
            assert (column[~np.isnan(column)] < c.min()).any() and (column[~np.isnan(column)] > c.max()).any()


def test_cache_is_reused_and_a_damaged_entry_rebuilt(model_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = model_dir / "model.txt"
    first = compile_model(model_file, tmp_path)
    expected = first(windows())
    obj = next(tmp_path.glob("*.o"))

    import lleaves.compiler.ast as lleaves_ast

    def no_parsing(path: str) -> None:
        raise AssertionError("a cached model was compiled again")

    with monkeypatch.context() as patch:
        patch.setattr(lleaves_ast, "parse_to_ast", no_parsing)
        np.testing.assert_array_equal(compile_model(model_file, tmp_path)(windows()), expected)

    obj.write_bytes(obj.read_bytes()[:100])  # truncated: its checksum no longer matches
    rebuilt = compile_model(model_file, tmp_path)
    np.testing.assert_array_equal(rebuilt(windows()), expected)
    assert file_sha256(obj) == next(tmp_path.glob("*.sha256")).read_text().strip()


def test_a_model_that_cannot_compile_keeps_lightgbm(model_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(model_file: Path, cache_dir: Path) -> None:
        raise RuntimeError("LLVM said no")

    monkeypatch.setattr(compiled, "compile_model", broken)
    model = RankingModel.load(model_dir, compile_dir=tmp_path)
    assert not model.wait_compiled(timeout=60)
    assert model.backend == "lightgbm"
    assert "LLVM said no" in (model._scorer.reason or "")  # type: ignore[attr-defined]
    assert model.score(windows()).shape == (500,)
    assert "scoring with LightGBM's predict" in caplog.text


def test_compiled_scores_that_disagree_are_not_used(model_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = compile_model

    def off_by_a_bit(model_file: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
        fn = real(model_file, cache_dir)
        return lambda m: fn(m) + 1e-6

    monkeypatch.setattr(compiled, "compile_model", off_by_a_bit)
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    scorer = CompilingScorer(model_dir / "model.txt", lambda m: booster.predict(m, num_threads=1),
                             booster, tmp_path, background=False)
    assert not scorer.compiled and "differ" in (scorer.reason or "")
