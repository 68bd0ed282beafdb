"""Putting a trained model into service: into the store, checked against the live features, compiled, promoted.

Every path that makes a model serve an index goes through ``promote_model`` — ``train --register``,
``models promote``, the demo and its click-trained ranker — so the checks a promotion makes are made
once, here: the model's contract against the index's live feature configuration, then the promotion
gate (``ltr.training.gate``: better than the best baseline order on held-out judged queries of the
index, or refused unless forced; the decision is stored with the model), then the model file's
checksum and the compiled scorer the endpoint will use (``compile_for_serving``), then the registry's
switch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrank.errors import ContractMismatch, DataError, PromotionRefused
from ltr.training.gate import GateResult, decide, forced, no_held_out, record_decision, too_few
from ltr.training.registry import DEFAULT_VARIANT, ModelRegistry, RegistryChange

if TYPE_CHECKING:
    from collections.abc import Callable

    from hybridrank.config import Settings
    from ltr.evaluation.held_out import HeldOutSource
    from ltr.training.feature_log import FeatureLog


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed, and the one-line account of compiling the model (None: nothing to compile)."""

    change: RegistryChange
    compiled: str | None
    gate: GateResult


def check_log_serves(settings: Settings, index: str, log: FeatureLog) -> None:
    """Refuse a feature log made with other features than ``index`` is configured with: a model trained
    on it could never serve that index, so it is not worth training for ``--register``."""
    from features.pipeline import FeaturePipeline

    live = FeaturePipeline.from_config(settings.index(index))
    if log.feature_names != live.names or log.metadata.get("feature_config_hash") != live.config_hash():
        raise ContractMismatch(f"the feature log was made with other features than index {index!r} "
                               f"is configured with: log {log.feature_names}, live {live.names}")


def store_model(registry: ModelRegistry, index: str, model_id: str, model_dir: Path) -> Path:
    """The model's directory in the store; a model written elsewhere (``train --out``) is copied in,
    under a temporary name first, so the store never holds half a model."""
    store_dir = registry.model_dir(index, model_id)
    if model_dir.resolve() != store_dir.resolve():
        staging = store_dir.parent / f".tmp-copy-{store_dir.name}"
        shutil.copytree(model_dir, staging)
        staging.replace(store_dir)
    return store_dir


def promote_model(settings: Settings, index: str, model_id: str, variant: str = DEFAULT_VARIANT, *,
                  held_out: HeldOutSource | None = None, force: bool = False,
                  say: Callable[[str], None] | None = None) -> Promotion:
    """Make the stored ``model_id`` serve (index, variant) after checking its contract against the live
    feature configuration (``ContractMismatch`` names the difference), passing the gate on the
    ``held_out`` judgments (``PromotionRefused`` with the numbers, unless ``force``) and compiling it
    for the endpoint. ``say`` hears what the gate is doing (it retrieves and scores every held-out query)."""
    from features.pipeline import FeaturePipeline
    from ltr.training.contract import ModelContract, check_contract
    from ltr.training.model import compile_for_serving

    registry = ModelRegistry.from_settings(settings)
    model_dir = registry.model_dir(index, model_id)
    pipeline = FeaturePipeline.from_config(settings.index(index))
    check_contract(ModelContract.read(model_dir), pipeline)
    gate = gate_model(settings, index, model_id, variant, held_out, say=say)
    if force:
        gate = forced(gate)
    record_decision(model_dir, gate)
    if not gate.promoted:
        raise PromotionRefused(f"{gate.summary()}. Not promoted"
                               + ("" if held_out is not None else "; give held-out judgments of this index")
                               + " (or --force to promote it anyway)", gate)
    compiled = compile_for_serving(model_dir, pipeline, settings.compiled_dir)
    return Promotion(registry.promote(index, model_id, variant), compiled, gate)


def gate_model(settings: Settings, index: str, model_id: str, variant: str, held_out: HeldOutSource | None, *,
               say: Callable[[str], None] | None = None) -> GateResult:
    """The gate's decision about ``model_id`` for (index, variant) on ``held_out`` (``ltr.training.gate``):
    the held-out judged queries, minus the model's training queries, the model's and the baselines' runs
    on them, and the rule."""
    from ltr.evaluation.held_out import gate_runs, without_training_queries
    from ltr.training.contract import ModelContract

    rule = settings.gate
    if held_out is None:
        return no_held_out(model_id, index, variant, rule, "no held-out judgments were given (qrels of this "
                           "index's queries, or its clicks)")
    model_dir = ModelRegistry.from_settings(settings).model_dir(index, model_id)
    try:
        judged = held_out.judged(settings, index)
    except DataError as exc:
        return no_held_out(model_id, index, variant, rule, f"no held-out judgments: {exc}")
    judged, excluded = without_training_queries(judged, model_dir, ModelContract.read(model_dir))
    few = too_few(len(judged.qrels), rule, model_id=model_id, index=index, variant=variant, source=judged.source,
                  excluded=excluded)
    if few is not None:
        return few
    if say is not None:
        say(f"gate: scoring {model_id} and the baselines {', '.join(rule.baselines)} on {len(judged.qrels)} "
            f"held-out queries ({judged.source})")
    model_run, baseline_runs = gate_runs(settings, index, model_dir, judged, rule.baselines)
    return decide(judged.qrels, model_run, baseline_runs, rule, model_id=model_id, index=index, variant=variant,
                  source=judged.source, excluded=excluded)
