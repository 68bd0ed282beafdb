"""A declared numeric document field (popularity, price, ...), raw or ``log1p``-transformed.

``num_<field>`` is the value as stored; ``log1p_<field>`` is ``log(1 + max(value, 0))`` for
heavy-tailed counts. Absent or non-numeric: NaN.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate

RAW_PREFIX = "num_"
LOG_PREFIX = "log1p_"


def _number(raw: Any) -> float:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if isinstance(raw, bool) or raw is None:
        return MISSING
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return MISSING
    return value if math.isfinite(value) else MISSING


class NumericField:
    """``num_<field>`` (``log=False``) or ``log1p_<field>`` (``log=True``)."""

    def __init__(self, field_name: str, *, log: bool = False) -> None:
        self.field_name = field_name
        self.log = log
        self.name = f"{LOG_PREFIX if log else RAW_PREFIX}{field_name}"
        self.source_fields = (field_name,)

    def params(self) -> dict[str, Any]:
        return {"field": self.field_name, "log1p": self.log}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        value = _number(ctx.exact_for(cand.doc_id).source.get(self.field_name))
        if math.isnan(value) or not self.log:
            return value
        return math.log1p(max(value, 0.0))
