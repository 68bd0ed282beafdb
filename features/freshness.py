"""Document age from the index's timestamp field, relative to the request time (never the clock).

``age_days``: (request_time - timestamp) in days. ``freshness``: ``0.5 ** (max(age, 0) / half_life)``
with the index's ``freshness_half_life_days``. No timestamp field, or none on the document: NaN.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext, SimpleFeature, as_utc

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate


def parse_timestamp(raw: Any) -> datetime | None:
    """ISO-8601 strings (date or datetime, ``Z`` allowed) or epoch milliseconds; None if unreadable."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            return None
        return datetime.fromtimestamp(raw / 1000.0, tz=UTC)
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000.0, tz=UTC)
        try:
            return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
    if isinstance(raw, list) and raw:
        return parse_timestamp(raw[0])
    return None


def age_days(ctx: FeatureContext, cand: Candidate) -> float:
    field_name = ctx.index_config.timestamp_field
    if not field_name:
        return MISSING
    moment = parse_timestamp(ctx.exact_for(cand.doc_id).source.get(field_name))
    if moment is None:
        return MISSING
    return (as_utc(ctx.request_time) - moment).total_seconds() / 86_400.0


class AgeDays(SimpleFeature):
    name = "age_days"

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        return age_days(ctx, cand)


class Freshness:
    """Exponential decay of age with a configurable half-life (days)."""

    name = "freshness"

    def __init__(self, half_life_days: float) -> None:
        self.half_life_days = float(half_life_days)

    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        age = age_days(ctx, cand)
        if math.isnan(age):
            return MISSING
        return float(0.5 ** (max(age, 0.0) / self.half_life_days))
