"""Starting an experiment: variants from ``NAME=RANKER[:SHARE]``, a check that each can be served, the record.

What ``hybridrank ab create`` runs. A variant whose model does not exist, or disagrees with the
live feature config, is refused here rather than left to the endpoint, which would serve that arm
in hybrid order with only a fallback header to say so; a model that passes is compiled for the
endpoint now (``ltr.training.model.compile_for_serving``), so the endpoint finds it ready instead
of compiling beside live traffic. es/hybrid/rrf need nothing. Refusals are ``ExperimentRefused``,
a ``ConfigError`` the CLI shows as a usage error; the config file's own errors keep their type.
"""

from __future__ import annotations

import math
import secrets
from typing import TYPE_CHECKING

from hybridrank.errors import ConfigError, ExperimentRefused
from ltr.experiments.store import RANKER, Experiment, ExperimentStore, Mode, Variant

if TYPE_CHECKING:
    from hybridrank.config import Settings


def parse_variant(spec: str) -> tuple[str, str, float | None]:
    """``name=ranker[:share]`` → (name, ranker, share or None). The ranker may itself contain ':'."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise ConfigError(f"{spec!r}: expected name=ranker[:share], e.g. B=model:m1:0.5")
    ranker, share = rest, None
    head, colon, tail = rest.rpartition(":")
    if colon and RANKER.match(head):
        try:
            share = float(tail)
        except ValueError:
            ranker, share = rest, None
        else:
            ranker = head
    if not RANKER.match(ranker):
        raise ConfigError(f"{spec!r}: ranker {ranker!r} is not one of es, hybrid, rrf, model:<id>, variant:<name>")
    if share is not None and not (0 < share <= 1 and math.isfinite(share)):
        raise ConfigError(f"{spec!r}: share must be in (0, 1]")
    return name, ranker, share


def build_variants(specs: tuple[str, ...]) -> tuple[Variant, ...]:
    """Variants from ``--variant`` options; unset shares split what the set ones leave, equally."""
    parsed = [parse_variant(s) for s in specs]
    given = sum(s for _, _, s in parsed if s is not None)
    missing = [p for p in parsed if p[2] is None]
    if missing and given >= 1:
        raise ConfigError(f"the given shares already sum to {given:g}; nothing is left for "
                          f"{', '.join(p[0] for p in missing)}")
    rest = (1.0 - given) / len(missing) if missing else 0.0
    return tuple(Variant(n, r, s if s is not None else rest) for n, r, s in parsed)


def start_experiment(settings: Settings, experiment_id: str, *, index: str, mode: Mode,
                     variants: tuple[Variant, ...], salt: str | None = None,
                     description: str = "") -> tuple[Experiment, list[str]]:
    """Check and compile every variant, then record the experiment as running (the endpoint picks it
    up without a restart): (the experiment, a note per compiled model). A random salt if none."""
    compiled = [note for v in variants if (note := _ready_to_serve(settings, index, v.ranker))]
    try:
        experiment = Experiment(id=experiment_id, index=index, mode=mode, variants=variants,
                                salt=salt or secrets.token_hex(8), description=description)
        ExperimentStore.from_settings(settings).create(experiment)
    except ConfigError as exc:
        raise ExperimentRefused(str(exc)) from exc
    return experiment, compiled


def _ready_to_serve(settings: Settings, index_name: str, ranker: str) -> str | None:
    """Refuse a variant whose model does not exist or disagrees with the live feature config, and
    compile the model for the endpoint; es/hybrid/rrf need nothing."""
    kind, _, name = ranker.partition(":")
    if kind not in ("model", "variant"):
        return None
    from features.pipeline import FeaturePipeline
    from ltr.training.model import compile_for_serving
    from ltr.training.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    model_id = registry.serving(index_name, name) if kind == "variant" else name
    if model_id is None:
        raise ExperimentRefused(f"{ranker}: no model serves index {index_name!r} variant {name!r} "
                                f"(`hybridrank models promote MODEL_ID --index {index_name} --variant {name}`)")
    model_dir = registry.model_dir(index_name, model_id)
    if not model_dir.is_dir():
        raise ExperimentRefused(f"{ranker}: index {index_name!r} has no model {model_id!r} "
                                f"(`hybridrank models list --index {index_name}`)")
    return compile_for_serving(model_dir, FeaturePipeline.from_config(settings.index(index_name)),
                               settings.compiled_dir)
