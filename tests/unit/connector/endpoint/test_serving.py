"""Which ranker serves (index, variant): ranker specs, cached model loads, reloads on a changed input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.endpoint.serving import RankerHolder
from ltr.ranking import EsOrder, HybridOrder, RrfOrder


def test_holder_resolves_ranker_specs_and_caches_models() -> None:
    loads: list[str] = []

    class Fixed:
        blocking = False

        def __init__(self, model_id: str) -> None:
            self.name = f"model:{model_id}"

    def load(index: str, model_id: str) -> Any:
        loads.append(model_id)
        if model_id == "broken":
            raise ValueError("corrupt")
        return Fixed(model_id)

    holder = RankerHolder({}, resolver=lambda i, v: {"default": "m1", "b": "m2"}.get(v), loader=load)
    assert isinstance(holder.get("i", "es")[0], EsOrder)
    assert isinstance(holder.get("i", "rrf")[0], RrfOrder)
    assert isinstance(holder.get("i", "hybrid")[0], HybridOrder)
    assert holder.get("i", "model:m9")[0].name == "model:m9"
    assert holder.get("i", "model:m9")[0].name == "model:m9"
    assert holder.get("i", "variant:b")[0].name == "model:m2"
    assert holder.get("i", None)[0].name == "model:m1"
    ranker, fallback = holder.get("i", "model:broken")
    assert isinstance(ranker, HybridOrder) and fallback and "model-load-failed: broken" in fallback
    assert loads == ["m9", "m2", "m1", "broken"]  # each loaded once
    assert not holder.needs_thread("i", "model:m9") and holder.needs_thread("i", "model:new")


def test_holder_reloads_models_when_the_click_statistics_change(tmp_path: Path) -> None:
    """A model's pipeline reads the click statistics at load: a new aggregate reloads it, a registry
    change alone reuses the loaded model."""
    import os

    loads: list[str] = []

    class Fixed:
        blocking = False
        name = "model:m1"

    def load(index: str, model_id: str) -> Any:
        loads.append(model_id)
        return Fixed()

    stats, registry = tmp_path / "idx.json", tmp_path / "registry.json"
    registry.write_text("{}")
    holder = RankerHolder({}, resolver=lambda i, v: "m1", loader=load, registry_file=registry,
                          check_interval_s=0.0, watched_files=[stats])
    holder.get("idx", None)
    holder.get("idx", None)
    assert loads == ["m1"]
    stats.write_text("{}")  # `hybridrank clicks aggregate` wrote the statistics
    holder.get("idx", None)
    assert loads == ["m1", "m1"]
    os.utime(registry, ns=(1, 1))  # a promotion that leaves this slot's model as it was
    holder.get("idx", None)
    assert loads == ["m1", "m1"]
    stats.unlink()  # removed statistics count as a change too
    holder.get("idx", None)
    assert loads == ["m1", "m1", "m1"]


def test_a_bad_model_on_hot_swap_is_refused_and_the_previous_one_keeps_serving(tmp_path: Path) -> None:
    """Real LightGBM models in a real registry: a truncated file, an unreadable one (checksum made to
    match) and a contract trained on other features are each refused with a message; the model that
    served keeps serving, and a good promotion afterwards still swaps."""
    import json
    import os

    from connector.client import make_client
    from connector.endpoint.serving import learned_holder
    from hybridrank.config import IndexConfig, Settings
    from ltr.training.contract import CONTRACT_FILE
    from ltr.training.model import LIGHTGBM_FILE
    from ltr.training.registry import ModelRegistry
    from ltr.training.scorer import file_sha256
    from ltr.training.train import TrainConfig, train_model
    from tests.support.feature_logs import NAMES, synthetic_log

    settings = Settings(home=tmp_path, compile_models=False, indices={"idx": IndexConfig(features=list(NAMES))})
    registry = ModelRegistry(tmp_path)

    def trained(model_id: str) -> Path:
        path = registry.model_dir("idx", model_id)
        train_model(synthetic_log(n_queries=8, per_query=6), path, config=TrainConfig(num_boost_round=5))
        contract = json.loads((path / CONTRACT_FILE).read_text())
        contract["model_id"] = model_id
        (path / CONTRACT_FILE).write_text(json.dumps(contract))
        return path

    def promote(model_id: str, stamp: int) -> None:
        registry.promote("idx", model_id)
        os.utime(registry.file, ns=(stamp, stamp))  # a distinct mtime whatever the clock's resolution

    def rewrite_contract(path: Path, **changes: Any) -> None:
        contract = json.loads((path / CONTRACT_FILE).read_text())
        contract.update(changes)
        (path / CONTRACT_FILE).write_text(json.dumps(contract))

    trained("good")
    truncated = trained("truncated") / LIGHTGBM_FILE
    truncated.write_bytes(truncated.read_bytes()[:300])
    garbage = trained("garbage")
    (garbage / LIGHTGBM_FILE).write_bytes(b"tree\nnot a model at all\n")
    rewrite_contract(garbage, model_sha256=file_sha256(garbage / LIGHTGBM_FILE))  # passes the checksum
    rewrite_contract(trained("mismatch"), feature_config_hash="0" * 16)
    trained("better")

    promote("good", 1_000_000_000)
    holder = learned_holder(settings, lambda: make_client(settings, url="http://127.0.0.1:9"), check_interval_s=0.0)
    ranker, fallback = holder.get("idx", None)
    assert (ranker.name, fallback) == ("model:good", None)
    for stamp, bad, words in ((2, "truncated", "truncated or corrupt"), (3, "garbage", "not a readable LightGBM"),
                              (4, "mismatch", "does not match the live feature config")):
        promote(bad, stamp * 1_000_000_000)
        ranker, fallback = holder.get("idx", None)
        assert (ranker.name, fallback) == ("model:good", None), bad  # the previous model keeps serving
        refused = holder.describe()["idx/default"]["refused"]
        assert refused.startswith(f"model-load-failed: {bad}: ") and words in refused
    promote("better", 5_000_000_000)
    assert holder.get("idx", None) == (holder.get("idx", None)[0], None)
    assert holder.get("idx", None)[0].name == "model:better"
    assert "refused" not in holder.describe()["idx/default"]
