"""Click statistics: a position-based click model fitted by EM, and debiased, smoothed CTR per (query, doc).

The position-based model (PBM; Chuklin, Markov & de Rijke, "Click Models for Web Search", ch. 3)
says a shown document is clicked iff it is examined (probability ``theta[position]``) and found
attractive (``alpha[query, doc]``): ``P(click) = theta_r * alpha_qd``. ``fit_pbm`` estimates both by
expectation-maximisation over (query, doc, position) cells.

Scale. PBM only identifies the product: ``(c*theta, alpha/c)`` fits as well as ``(theta, alpha)``.
We report ``theta`` **relative to rank 1** (``theta[1] == 1``; the lowest shown position if rank 1
never appears) and rescale ``alpha`` so products are unchanged; ``alpha`` then reads "the click
probability this document would have at rank 1". Relative ``theta`` is also only identifiable when
documents appear at varied positions (A/B traffic, interleaving, reformulations): from one fixed
ranking per query any ``theta`` fits; ``PositionModel.varied_pairs`` reports how much variation there was.

Debiased CTR. ``expected`` clicks of a (query, doc) = the sum of ``theta[position]`` over its
impressions (rank-1-equivalent impressions); CTR = clicks / expected, smoothed by a beta prior
towards the global rate: ``(clicks + m * p0) / (expected + m)`` with ``m`` = ``ctr_prior_weight`` and
``p0`` = all clicks / all expected clicks of the window.

``ClickStatistics.ctr(query, doc)`` (the ``features.base.ClickStats`` protocol) answers for the
(query, doc) pair only: ``None`` (the feature's NaN, "no evidence") when the pair was never shown,
even if the document was shown under other queries. A document-level value is ``doc_ctr(doc)``.
Queries are keyed by ``normalize_query`` (strip, lowercase, collapse whitespace), the same function
when writing and when serving. Nothing here reads the wall clock: windows are relative to an
``as_of`` the caller passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from connector.events.schema import parse_time
from hybridrank.errors import DataError, HybridRankError
from hybridrank.files import write_text_atomic
from ltr.clicks.impressions import Impression

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from hybridrank.config import Settings

# DESIGN.md's simulated users: examination probability at ranks 1-10
DESIGN_EXAMINATION = (0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06)
STATS_FORMAT = 1
Pair = tuple[str, str]  # (normalised query, doc id)


@lru_cache(maxsize=8192)
def normalize_query(text: str) -> str:
    """The key of a query in the click statistics: stripped, lowercased, whitespace collapsed."""
    return " ".join(str(text).split()).lower()


# -- the position-based model ---------------------------------------------------------------------
@dataclass(frozen=True)
class PositionModel:
    """A fitted PBM: examination per position (relative to ``anchor_position``) and attractiveness."""

    examination: dict[int, float]
    attractiveness: dict[Pair, float]
    anchor_position: int
    iterations: int
    converged: bool
    log_likelihood: float
    observations: int  # shown (impression, doc) pairs
    varied_pairs: float  # share of (query, doc) pairs seen at >= 2 positions

    def examination_at(self, position: int) -> float:
        """theta of ``position``; a position never observed takes the nearest observed one above it."""
        if position in self.examination:
            return self.examination[position]
        known = [p for p in self.examination if p <= position]
        return self.examination[max(known)] if known else self.examination[min(self.examination)]


def _cells(impressions: Iterable[Impression]) -> tuple[list[int], list[Pair], np.ndarray, np.ndarray,
                                                      np.ndarray, np.ndarray]:
    """Aggregate into (query, doc, position) cells: positions, pairs, per-cell index arrays and counts."""
    counts: dict[tuple[Pair, int], list[int]] = {}
    for imp in impressions:
        query = normalize_query(imp.query)
        for hit in imp.hits:
            cell = counts.setdefault(((query, hit.doc_id), hit.position), [0, 0])
            cell[0] += 1
            cell[1] += hit.doc_id in imp.clicks
    positions = sorted({pos for (_, pos) in counts})
    pairs = list(dict.fromkeys(pair for (pair, _) in counts))
    pos_at = {p: i for i, p in enumerate(positions)}
    pair_at = {p: i for i, p in enumerate(pairs)}
    keys = list(counts)
    pos_idx = np.fromiter((pos_at[k[1]] for k in keys), dtype=np.int64, count=len(keys))
    pair_idx = np.fromiter((pair_at[k[0]] for k in keys), dtype=np.int64, count=len(keys))
    n = np.fromiter((counts[k][0] for k in keys), dtype=np.float64, count=len(keys))
    c = np.fromiter((counts[k][1] for k in keys), dtype=np.float64, count=len(keys))
    return positions, pairs, pos_idx, pair_idx, n, c


def fit_pbm(impressions: Sequence[Impression], *, max_iter: int = 2000, tol: float = 1e-5,
            alpha_prior: tuple[float, float] = (0.0, 0.0)) -> PositionModel:
    """EM fit of the position-based model; ``DataError`` without impressions or without clicks.

    ``alpha_prior`` = (a, b) pseudo-counts (clicks, skips) added to every attractiveness update
    (MAP-style smoothing of rarely shown pairs); (0, 0) = maximum likelihood, as in Chuklin et al.
    """
    positions, pairs, pos_idx, pair_idx, n, c = _cells(impressions)
    if not pairs:
        raise DataError("no impressions with shown documents: nothing to fit a click model on")
    if c.sum() == 0:
        raise DataError(f"none of the {int(n.sum())} shown documents was clicked: a click model needs clicks")
    n_pos, n_pair = len(positions), len(pairs)
    shown_at = np.bincount(pos_idx, weights=n, minlength=n_pos)
    shown_pair = np.bincount(pair_idx, weights=n, minlength=n_pair)
    # start: theta from the raw CTR per position (scaled into (0, 1)), alpha flat
    ctr_at = np.bincount(pos_idx, weights=c, minlength=n_pos) / shown_at
    theta = np.clip(0.9 * ctr_at / max(ctr_at.max(), 1e-12), 0.05, 0.95)
    alpha = np.full(n_pair, 0.5)
    a, b = alpha_prior
    skips = n - c
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        t, al = theta[pos_idx], alpha[pair_idx]
        not_clicked = np.maximum(1.0 - t * al, 1e-12)
        # E-step: P(examined | no click) = t(1-a)/(1-ta); P(attractive | no click) = a(1-t)/(1-ta)
        examined = c + skips * t * (1.0 - al) / not_clicked
        attractive = c + skips * al * (1.0 - t) / not_clicked
        new_theta = np.bincount(pos_idx, weights=examined, minlength=n_pos) / shown_at
        new_alpha = (np.bincount(pair_idx, weights=attractive, minlength=n_pair) + a) / (shown_pair + a + b)
        change = max(float(np.abs(new_theta - theta).max()), float(np.abs(new_alpha - alpha).max()))
        theta, alpha = new_theta, new_alpha
        if change < tol:
            converged = True
            break
    p = np.clip(theta[pos_idx] * alpha[pair_idx], 1e-12, 1 - 1e-12)
    log_likelihood = float((c * np.log(p) + skips * np.log1p(-p)).sum())
    anchor = next((i for i in range(n_pos) if theta[i] > 0), 0)
    scale = float(theta[anchor]) or 1.0
    varied = np.bincount(pair_idx, minlength=n_pair) >= 2
    return PositionModel(
        examination={positions[i]: float(theta[i] / scale) for i in range(n_pos)},
        attractiveness={pairs[j]: float(alpha[j] * scale) for j in range(n_pair)},
        anchor_position=positions[anchor], iterations=iterations, converged=converged,
        log_likelihood=log_likelihood, observations=int(n.sum()), varied_pairs=float(varied.mean()))


# -- statistics -----------------------------------------------------------------------------------
@dataclass
class Counts:
    """Evidence of one (query, doc) pair or one doc: impressions, clicks, expected (theta-weighted) clicks."""

    impressions: int = 0
    clicks: int = 0
    expected: float = 0.0

    def add(self, clicked: bool, theta: float) -> None:
        self.impressions += 1
        self.clicks += int(clicked)
        self.expected += theta


@dataclass
class ClickStatistics:
    """Debiased, smoothed CTR per (query, doc) and per doc; implements ``features.base.ClickStats``."""

    pairs: dict[Pair, Counts]
    docs: dict[str, Counts]
    examination: dict[int, float]
    prior_weight: float
    prior_ctr: float  # p0: clicks / expected clicks over the whole window
    since: datetime | None = None
    until: datetime | None = None
    index: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, impressions: Iterable[Impression], examination: Mapping[int, float], *,
              prior_weight: float, since: datetime | None = None, until: datetime | None = None,
              index: str = "", info: Mapping[str, Any] | None = None) -> ClickStatistics:
        """Count the evidence of ``impressions`` with the examination probabilities ``examination``."""
        if prior_weight < 0:
            raise HybridRankError(f"the CTR prior weight must be >= 0, got {prior_weight}")
        model = _theta_lookup(examination)
        pairs: dict[Pair, Counts] = {}
        docs: dict[str, Counts] = {}
        for imp in impressions:
            query = normalize_query(imp.query)
            for hit in imp.hits:
                clicked, theta = hit.doc_id in imp.clicks, model(hit.position)
                pairs.setdefault((query, hit.doc_id), Counts()).add(clicked, theta)
                docs.setdefault(hit.doc_id, Counts()).add(clicked, theta)
        clicks = sum(cnt.clicks for cnt in docs.values())
        expected = sum(cnt.expected for cnt in docs.values())
        return cls(pairs, docs, dict(examination), float(prior_weight), clicks / expected if expected > 0 else 0.0,
                   since, until, index, dict(info or {}))

    def smoothed(self, counts: Counts | None) -> float | None:
        """(clicks + m*p0) / (expected + m); None for no impressions (or nothing to divide by)."""
        if counts is None or counts.impressions == 0:
            return None
        denominator = counts.expected + self.prior_weight
        if denominator <= 0:
            return None
        return (counts.clicks + self.prior_weight * self.prior_ctr) / denominator

    def ctr(self, query: str, doc_id: str) -> float | None:
        """The (query, doc) debiased smoothed CTR; None when that pair was never shown."""
        return self.smoothed(self.pairs.get((normalize_query(query), doc_id)))

    def doc_ctr(self, doc_id: str) -> float | None:
        """The document's debiased smoothed CTR over every query; None when never shown."""
        return self.smoothed(self.docs.get(doc_id))

    @property
    def impressions(self) -> int:
        return sum(cnt.impressions for cnt in self.docs.values())

    @property
    def clicks(self) -> int:
        return sum(cnt.clicks for cnt in self.docs.values())

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": STATS_FORMAT, "index": self.index,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "prior_weight": self.prior_weight, "prior_ctr": self.prior_ctr,
            "examination": {str(p): v for p, v in sorted(self.examination.items())},
            "info": self.info,
            "pairs": [[q, d, c.impressions, c.clicks, c.expected] for (q, d), c in self.pairs.items()],
            "docs": [[d, c.impressions, c.clicks, c.expected] for d, c in self.docs.items()],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "click statistics") -> ClickStatistics:
        if raw.get("format_version") != STATS_FORMAT:
            raise DataError(f"{source}: format {raw.get('format_version')!r} is not supported "
                            f"(this version reads {STATS_FORMAT}); run `hybridrank clicks aggregate` again")
        try:
            return cls(
                pairs={(str(q), str(d)): Counts(int(n), int(c), float(e)) for q, d, n, c, e in raw["pairs"]},
                docs={str(d): Counts(int(n), int(c), float(e)) for d, n, c, e in raw["docs"]},
                examination={int(p): float(v) for p, v in raw["examination"].items()},
                prior_weight=float(raw["prior_weight"]), prior_ctr=float(raw["prior_ctr"]),
                since=parse_time(raw["since"]) if raw.get("since") else None,
                until=parse_time(raw["until"]) if raw.get("until") else None,
                index=str(raw.get("index", "")), info=dict(raw.get("info") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed click statistics ({exc!r})") from exc


def _theta_lookup(examination: Mapping[int, float]) -> Any:
    if not examination:
        raise HybridRankError("no examination probabilities given")
    known = sorted(examination)

    def theta(position: int) -> float:
        if position in examination:
            return float(examination[position])
        below = [p for p in known if p <= position]
        return float(examination[below[-1] if below else known[0]])

    return theta


# -- windows --------------------------------------------------------------------------------------
def resolve_window(*, as_of: datetime | None = None, window_days: float = 0.0, since: datetime | None = None,
                   until: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """[since, until): explicit bounds win; else ``until`` = ``as_of`` and ``since`` = until - window_days."""
    if until is None:
        until = as_of
    if since is None and window_days > 0:
        if until is None:
            raise HybridRankError("a window in days needs an as-of time or an end (--as-of / --until): "
                                  "click statistics never read the clock")
        since = until - timedelta(days=window_days)
    if since is not None and until is not None and since >= until:
        raise HybridRankError(f"empty window: since {since.isoformat()} is not before until {until.isoformat()}")
    return since, until


def in_window(impressions: Iterable[Impression], since: datetime | None, until: datetime | None) -> list[Impression]:
    """The impressions with ``since <= timestamp < until`` (a missing bound is open)."""
    return [i for i in impressions
            if (since is None or i.timestamp >= since) and (until is None or i.timestamp < until)]


def aggregate_clicks(impressions: Sequence[Impression], *, prior_weight: float, window_days: float = 0.0,
                     as_of: datetime | None = None, since: datetime | None = None, until: datetime | None = None,
                     index: str = "", max_iter: int = 2000, tol: float = 1e-5,
                     ) -> tuple[ClickStatistics, PositionModel]:
    """Window the impressions, fit the PBM on them, count the debiased evidence."""
    since, until = resolve_window(as_of=as_of, window_days=window_days, since=since, until=until)
    chosen = in_window(impressions, since, until)
    if not chosen:
        raise DataError(f"no impressions{_window_text(since, until)} ({len(impressions)} outside it)")
    model = fit_pbm(chosen, max_iter=max_iter, tol=tol)
    info = {"impressions": len(chosen), "observations": model.observations,
            "clicks": sum(len(i.clicks) for i in chosen), "em_iterations": model.iterations,
            "em_converged": model.converged, "varied_pairs": model.varied_pairs,
            "as_of": as_of.isoformat() if as_of else None}
    stats = ClickStatistics.build(chosen, model.examination, prior_weight=prior_weight, since=since, until=until,
                                  index=index, info=info)
    return stats, model


def _window_text(since: datetime | None, until: datetime | None) -> str:
    if since is None and until is None:
        return ""
    return f" between {since.isoformat() if since else 'the start'} and {until.isoformat() if until else 'now'}"


# -- I/O ------------------------------------------------------------------------------------------
def click_stats_path(settings: Settings, index: str) -> Path:
    if not index or "/" in index or index.startswith("."):
        raise HybridRankError(f"not a usable index name for click statistics: {index!r}")
    return settings.clicks_dir / f"{index}.json"


def write_click_stats(stats: ClickStatistics, path: str | Path) -> Path:
    """Write atomically (temporary file in the same folder, then rename): readers see old or new."""
    return write_text_atomic(path, json.dumps(stats.to_dict(), separators=(",", ":"), allow_nan=False))


def read_click_stats(path: str | Path) -> ClickStatistics:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable click statistics ({exc})") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object")
    return ClickStatistics.from_dict(raw, source=str(path))


def load_click_stats(settings: Settings, index: str) -> ClickStatistics | None:
    """The statistics ``hybridrank clicks aggregate`` last wrote for ``index``; None if none yet."""
    path = click_stats_path(settings, index)
    if not path.is_file():
        return None
    return read_click_stats(path)


def read_index_impressions(client: Elasticsearch, settings: Settings, index: str, *,
                           since: datetime | None = None, until: datetime | None = None
                           ) -> tuple[list[Impression], int]:
    """(impressions, orphan clicks) of ``index`` from the events index; ``DataError`` if there is none."""
    from connector.client import translate_errors
    from ltr.clicks.impressions import read_impressions

    events_index = settings.feedback.events_index
    with translate_errors(events_index):
        exists = bool(client.indices.exists(index=events_index))
    if not exists:
        raise DataError(f"no events index {events_index!r} yet: serve searches with `hybridrank serve` "
                        "(impressions are logged) and post clicks to /_hybridrank/events, or run `hybridrank simulate`")
    return read_impressions(client, events_index, index=index, since=since, until=until)


def load_clicked_impressions(settings: Settings, index: str, *, since: datetime | None = None,
                             until: datetime | None = None) -> tuple[list[Impression], int]:
    """(impressions, orphan clicks) of ``index`` in [since, until); ``DataError`` without impressions or clicks."""
    from connector.client import make_client

    client = make_client(settings)
    try:
        impressions, orphans = read_index_impressions(client, settings, index, since=since, until=until)
    finally:
        client.close()
    period = " in that period" if since or until else ""
    if not impressions:
        raise DataError(f"no impressions of index {index!r} in {settings.feedback.events_index!r}{period}: "
                        "serve some searches first")
    if not any(i.clicks for i in impressions):
        raise DataError(f"{len(impressions)} impressions of index {index!r}{period} but no clicks yet"
                        + (f" ({orphans} clicks name no stored impression)" if orphans else "")
                        + ": post clicks to /_hybridrank/events")
    return impressions, orphans

