"""Boosting from fusion: a model's base score is one of its features times a scale (issue 14).

LightGBM lambdarank normally starts every candidate at 0 and its trees learn the whole ranking. With
a base score the trees start from the fused order instead (``init_score`` = ``scale * fused_linear``
at training) and learn a correction to it; a model whose trees learn nothing that generalises stays
close to fusion, which is what a collection without judgments of its own should get.

LightGBM's model file does not hold the init score, so the contract does (``ModelContract.base_score``:
``{"feature": ..., "scale": ...}``, empty for a model without one) and ``margin`` is the one function
that adds it: training (the init score, the validation scores) and serving (``RankingModel.score``)
both call it. A missing value of the feature (NaN) adds 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybridrank.errors import ModelError


@dataclass(frozen=True)
class BaseScore:
    feature: str
    scale: float

    def margin(self, matrix: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """``scale * matrix[:, feature]`` (NaN -> 0), one value per row."""
        column = np.asarray(matrix, dtype=np.float64)[:, list(feature_names).index(self.feature)]
        return self.scale * np.nan_to_num(column, nan=0.0, posinf=0.0, neginf=0.0)

    def to_contract(self) -> dict[str, Any]:
        return {"feature": self.feature, "scale": float(self.scale)}


def from_contract(raw: Mapping[str, Any] | None, feature_names: Sequence[str], where: str) -> BaseScore | None:
    """The contract's base score (None when it has none); ``ModelError`` naming what is wrong with it."""
    if not raw:
        return None
    feature, scale = raw.get("feature"), raw.get("scale")
    if not isinstance(feature, str) or feature not in feature_names:
        raise ModelError(f"{where}: base_score feature {feature!r} is not one of the model's features")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise ModelError(f"{where}: base_score scale {scale!r} is not a finite number")
    return BaseScore(feature, float(scale))
