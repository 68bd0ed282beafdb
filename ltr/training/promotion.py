"""Putting a trained model into service: into the store, checked against the live features, compiled, promoted.

Every path that makes a model serve an index goes through ``promote_model`` — ``train --register``,
``models promote`` and the demo — so the checks a promotion makes are made once, here: the model
file's checksum and its contract against the index's live feature configuration (``RankingModel.load``),
then the compiled scorer the endpoint will use (``compile_for_serving``), then the registry's switch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrank.errors import ContractMismatch
from ltr.training.registry import DEFAULT_VARIANT, ModelRegistry, RegistryChange

if TYPE_CHECKING:
    from hybridrank.config import Settings
    from ltr.training.feature_log import FeatureLog


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed, and the one-line account of compiling the model (None: nothing to compile)."""

    change: RegistryChange
    compiled: str | None


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


def promote_model(settings: Settings, index: str, model_id: str, variant: str = DEFAULT_VARIANT) -> Promotion:
    """Make the stored ``model_id`` serve (index, variant), after loading it against the live feature
    configuration (``ContractMismatch`` names the difference) and compiling it for the endpoint."""
    from features.pipeline import FeaturePipeline
    from ltr.training.model import compile_for_serving

    registry = ModelRegistry(settings.home)
    compiled = compile_for_serving(registry.model_dir(index, model_id),
                                   FeaturePipeline.from_config(settings.index(index)), settings.compiled_dir)
    return Promotion(registry.promote(index, model_id, variant), compiled)
