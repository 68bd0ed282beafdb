"""The feature contract: a name, what it reads, and its value for one candidate at request time.

A feature never reads the wall clock (``FeatureContext.request_time`` is the request's timestamp) and
never turns "unknown" into zero: a missing value is ``NaN``. The same ``value`` serves training logs
and live ranking, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate
    from hybridrank.config import IndexConfig

MISSING = math.nan
DENSE_SCORE = "dense"  # key of the exact cosine in ExactScores.named


def bm25_key(field_name: str) -> str:
    """Key of a text field's exact BM25 score in ``ExactScores.named`` (also the ES ``_name``)."""
    return f"bm25:{field_name}"


@runtime_checkable
class ClickStats(Protocol):
    """Click statistics the feedback loop maintains; ``None`` when a (query, doc) pair has none."""

    def ctr(self, query: str, doc_id: str) -> float | None: ...


@dataclass(slots=True)
class ExactScores:
    """One candidate's exact scores from the single feature round trip.

    ``found`` is False when the document was not returned at all (deleted since retrieval): then
    every score is missing. A text field absent from ``named`` did not match: a true BM25 of 0.
    Not frozen: one is built per candidate of every reranked search, and a frozen dataclass's
    ``__init__`` (``object.__setattr__`` per field) cost 3x as much (~0.9 vs 0.3 us); nothing mutates it.
    """

    named: dict[str, float] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    found: bool = True


@dataclass(slots=True)
class FeatureContext:
    """Everything a feature may read for one query: request, exact scores, window-level fusion."""

    query_text: str
    query_vector: np.ndarray | None
    request_time: datetime
    index_config: IndexConfig
    exact: dict[str, ExactScores] = field(default_factory=dict)
    fused: dict[str, dict[str, float]] | None = None  # doc_id -> {"rrf": .., "linear": ..}; None: on first use
    click_stats: ClickStats | None = None
    candidates: Sequence[Candidate] = ()  # the whole window, for window-relative features
    cache: dict[str, Any] = field(default_factory=dict)  # per-query values shared by features
    term_idf: tuple[float, ...] | None = None  # IDF of each analysed query term (features.query_idf)

    def fused_scores(self) -> dict[str, dict[str, float]]:
        """doc_id -> {method: fused score} of the window (``connector.retrieval.fusion.window_fusions``), computed
        once, when a candidate's value is first asked (the columns need no per-candidate dicts)."""
        if self.fused is None:
            from connector.retrieval.fusion import window_fusions

            self.fused = window_fusions(self.candidates, self.index_config)
        return self.fused

    def exact_for(self, doc_id: str) -> ExactScores:
        return self.exact.get(doc_id) or ExactScores(found=False)

    def named_column(self, key: str, absent: float) -> np.ndarray:
        """One named exact score for every candidate (float64, window order), computed once per query:
        NaN where the document was not found, ``absent`` where it was but the clause did not match."""
        import numpy as np

        cache_key = f"named:{key}:{absent!r}"
        column: np.ndarray | None = self.cache.get(cache_key)
        if column is None:
            rows = self._named_rows()
            column = np.array([MISSING if named is None else absent if (score := named.get(key)) is None
                               else float(score) for named in rows], dtype=np.float64)
            self.cache[cache_key] = column
        return column

    def _named_rows(self) -> list[dict[str, float] | None]:
        """Each candidate's named scores (None: not found), looked up once per query for every column."""
        rows: list[dict[str, float] | None] | None = self.cache.get("named:rows")
        if rows is None:
            exact = self.exact
            rows = []
            for cand in self.candidates:
                scores = exact.get(cand.doc_id)
                rows.append(scores.named if scores is not None and scores.found else None)
            self.cache["named:rows"] = rows
        return rows


class Feature(Protocol):
    """One ranking feature. ``params`` is what the feature-config hash covers besides the name.

    A feature may also have ``column(ctx) -> np.ndarray``: its value for every candidate of
    ``ctx.candidates`` at once, which the pipeline then uses instead of calling ``value`` per
    candidate (~1/4 of feature logging's time went to those calls). ``column`` must equal ``value``
    bit for bit: ``tests/unit/features/test_columns.py`` checks every feature that has one."""

    @property
    def name(self) -> str: ...

    def value(self, ctx: FeatureContext, cand: Candidate) -> float: ...

    def params(self) -> dict[str, Any]: ...


class SimpleFeature:
    """Base for features without parameters: a fixed ``name`` and empty ``params``."""

    name: ClassVar[str] = ""
    source_fields: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        return {}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class WindowColumnFeature:
    """Base for a feature computed for the whole window at once (``compute``), cached per query under
    ``cache_key``; ``value`` reads the candidate's entry of that column."""

    cache_key: str = ""

    def compute(self, ctx: FeatureContext) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def column(self, ctx: FeatureContext) -> np.ndarray:
        column: np.ndarray | None = ctx.cache.get(self.cache_key)
        if column is None:
            column = self.compute(ctx)
            ctx.cache[self.cache_key] = column
        return column

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        for i, c in enumerate(ctx.candidates):
            if c.doc_id == cand.doc_id:
                return float(self.column(ctx)[i])
        return MISSING


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
