"""The model registry: store layout, promote/rollback history, atomic writes, plain errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridrank.errors import ModelError
from ltr.training.registry import ModelRegistry


def _fake_model(registry: ModelRegistry, index: str, model_id: str) -> Path:
    """A directory with a well-formed contract (the registry reads contracts, not model files)."""
    path = registry.model_dir(index, model_id)
    path.mkdir(parents=True)
    contract = {
        "model_id": model_id, "model_type": "lightgbm", "model_file": "model.txt", "model_sha256": "0",
        "feature_names": ["dense_cosine"], "missing_policy": "native_nan", "feature_config_hash": "h",
        "feature_params": [{"name": "dense_cosine"}], "context_params": {}, "training": {"index": index},
        "library_versions": {}, "metrics": {"valid_window_ndcg@10": 0.5}, "created_at": model_id,
        "preprocessing": {}, "format_version": 1,
    }
    (path / "contract.json").write_text(json.dumps(contract))
    return path


def test_promote_keeps_history_and_rollback_walks_it_back(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    for mid in ("m1", "m2", "m3"):
        _fake_model(reg, "docs", mid)
    assert reg.serving("docs") is None
    assert reg.promote("docs", "m1").previous is None
    assert reg.promote("docs", "m2").previous == "m1"
    change = reg.promote("docs", "m3")
    assert (change.previous, change.current) == ("m2", "m3")
    assert reg.promote("docs", "m1", variant="B").current == "m1"  # variants are independent
    assert reg.rollback("docs").current == "m2"
    assert reg.rollback("docs").current == "m1"
    with pytest.raises(ModelError, match="nothing to roll back to"):
        reg.rollback("docs")
    assert reg.serving("docs") == "m1" and reg.serving("docs", "B") == "m1"
    entries = {e.model_id: e for e in reg.list_models("docs")}
    assert set(entries) == {"m1", "m2", "m3"}
    assert set(entries["m1"].serving_variants) == {"default", "B"}


def test_registry_file_is_replaced_atomically(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _fake_model(reg, "docs", "m1")
    reg.promote("docs", "m1")
    state = json.loads(reg.file.read_text())
    assert state["serving"]["docs"]["default"]["model_id"] == "m1"
    assert [p.name for p in reg.root.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_write_leaves_the_previous_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = ModelRegistry(tmp_path)
    _fake_model(reg, "docs", "m1")
    _fake_model(reg, "docs", "m2")
    reg.promote("docs", "m1")
    before = reg.file.read_text()

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("hybridrank.files.os.replace", crash)  # the one atomic-write path
    with pytest.raises(OSError, match="disk full"):
        reg.promote("docs", "m2")
    assert reg.file.read_text() == before
    assert ModelRegistry(tmp_path).serving("docs") == "m1"


def test_promote_refuses_what_is_not_a_complete_model(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match="not a model directory"):
        reg.promote("docs", "ghost")
    half = reg.model_dir("docs", "half")
    half.mkdir(parents=True)
    (half / "contract.json").write_text('{"model_id": "ha')
    with pytest.raises(ModelError, match="unreadable or truncated"):
        reg.promote("docs", "half")
    assert not reg.file.exists()
    with pytest.raises(ModelError, match="bad model id"):
        reg.model_dir("docs", "../etc")


def test_resolve_by_path_id_and_serving(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    path = _fake_model(reg, "docs", "m1")
    assert reg.resolve(str(path)) == path
    assert reg.resolve("m1") == path
    with pytest.raises(ModelError, match="no model serves index 'docs'"):
        reg.resolve("serving", index="docs")
    reg.promote("docs", "m1", variant="B")
    assert reg.resolve("serving:B", index="docs") == path
    with pytest.raises(ModelError, match="no model 'm9'"):
        reg.resolve("m9")


def test_a_malformed_registry_file_is_a_plain_error(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    reg.root.mkdir(parents=True)
    reg.file.write_text("[1, 2")
    with pytest.raises(ModelError, match=r"registry .* is unreadable"):
        reg.serving("docs")
