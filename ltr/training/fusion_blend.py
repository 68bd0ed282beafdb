"""Blending a model with linear fusion, per window: what carries a model to an index it never saw (issue 14).

A model learns its own collection's notion of relevance; carried unchanged to another collection it can rank
below plain fusion (docs/ltr.md, the transfer tables). A blend keeps part of the fused order: over one
candidate window, ``(1 - weight) * minmax(model score) + weight * minmax(fused feature)``, both min-max
normalised over the window as linear fusion normalises its legs, so the weight means the same on every
index whatever the model's score scale. The weight is fixed at training (``hybridrank train --fusion-blend``)
and carried in the model contract (``ModelContract.fusion_blend``: ``{"feature", "weight"}``, empty for none);
``FusionBlend.apply`` is the one function that applies it, to the validation windows at training and to
every served or evaluated window (``RankingModel.score``). A window whose scores are all equal gets 1 for that
part; a missing model score or fused value (NaN) counts as the window's lowest. A log is scored query by
query (``FeatureLog.groups``), each query's rows one window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybridrank.errors import ModelError


@dataclass(frozen=True)
class FusionBlend:
    feature: str
    weight: float

    def apply(self, scores: np.ndarray, matrix: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """The blended scores of one window (``scores``: the model's, one per row of ``matrix``)."""
        fused = np.asarray(matrix, dtype=np.float64)[:, list(feature_names).index(self.feature)]
        return (1.0 - self.weight) * window_minmax(scores) + self.weight * window_minmax(fused)

    def to_contract(self) -> dict[str, Any]:
        return {"feature": self.feature, "weight": float(self.weight)}


def window_minmax(values: np.ndarray) -> np.ndarray:
    """``values`` min-max scaled over the window (``features.window_minmax.minmax``, as the ``minmax_`` features and
    linear fusion's legs), a missing or infinite value counted as the window's lowest (0)."""
    from features.window_minmax import minmax

    x = np.asarray(values, dtype=np.float64)
    return np.nan_to_num(minmax(np.where(np.isfinite(x), x, np.nan)), nan=0.0)


def from_contract(raw: Mapping[str, Any] | None, feature_names: Sequence[str], where: str) -> FusionBlend | None:
    """The contract's blend (None when it has none); ``ModelError`` naming what is wrong with it."""
    if not raw:
        return None
    feature, weight = raw.get("feature"), raw.get("weight")
    if not isinstance(feature, str) or feature not in feature_names:
        raise ModelError(f"{where}: fusion_blend feature {feature!r} is not one of the model's features")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1 \
            or not math.isfinite(weight):
        raise ModelError(f"{where}: fusion_blend weight {weight!r} is not a number in [0, 1]")
    return FusionBlend(feature, float(weight))

