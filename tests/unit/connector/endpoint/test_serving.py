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
