"""Click statistics: debiased, smoothed CTR per (query, doc) over a window, stored per index.

Debiased CTR. ``expected`` clicks of a (query, doc) = the sum of ``theta[position]`` over its
impressions (rank-1-equivalent impressions); CTR = clicks / expected, smoothed by a beta prior
towards the global rate: ``(clicks + m * p0) / (expected + m)`` with ``m`` = ``ctr_prior_weight`` and
``p0`` = all clicks / all expected clicks of the window. ``theta`` is the examination of the
position-based model (``ltr.clicks.pbm``), which ``aggregate_clicks`` fits on the same window.

``ClickStatistics.ctr(query, doc)`` (the ``features.base.ClickStats`` protocol) answers for the
(query, doc) pair only: ``None`` (the feature's NaN, "no evidence") when the pair was never shown,
even if the document was shown under other queries. A document-level value is ``doc_ctr(doc)``.
Queries are keyed by ``normalize_query`` (``ltr.clicks.pbm``: strip, lowercase, collapse
whitespace), the same function when writing and when serving. Nothing here reads the wall clock:
windows are relative to an ``as_of`` the caller passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.events.schema import parse_time
from hybridrank.errors import DataError, HybridRankError
from hybridrank.files import write_text_atomic
from ltr.clicks.impressions import Impression
from ltr.clicks.pbm import Pair, PositionModel, fit_pbm, normalize_query

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from hybridrank.config import Settings

STATS_FORMAT = 1


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


def _shared_key(settings: Settings, index: str) -> str | None:
    """The shared document of ``index``'s statistics when ``[state]`` keeps them in Elasticsearch, else None."""
    click_stats_path(settings, index)  # the same check of the name
    return f"clicks/{index}" if settings.state.store == "elasticsearch" else None


def load_click_stats(settings: Settings, index: str) -> ClickStatistics | None:
    """The statistics ``hybridrank clicks aggregate`` last saved for ``index``; None if none yet."""
    key = _shared_key(settings, index)
    if key is not None:
        from connector.state.stores import shared_documents

        raw = shared_documents(settings).read(key)
        return None if raw is None else ClickStatistics.from_dict(raw, source=f"[{settings.state.index}] {key}")
    path = click_stats_path(settings, index)
    if not path.is_file():
        return None
    return read_click_stats(path)


def save_click_stats(settings: Settings, index: str, stats: ClickStatistics) -> str:
    """Save ``index``'s statistics where ``[state]`` says (a file, or the shared document); where, as text."""
    key = _shared_key(settings, index)
    if key is None:
        return str(write_click_stats(stats, click_stats_path(settings, index)))
    from connector.state.stores import shared_documents

    raw = json.loads(json.dumps(stats.to_dict(), allow_nan=False))

    def replace(document: dict[str, Any]) -> None:
        document.clear()
        document.update(raw)

    shared_documents(settings).update(key, replace)
    return f"[{settings.state.index}] {key}"


def click_stats_version(settings: Settings, index: str) -> object:
    """What changes whenever ``index``'s statistics are saved again (None: there are none)."""
    key = _shared_key(settings, index)
    if key is None:
        path = click_stats_path(settings, index)
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None
    from connector.state.stores import shared_documents

    return shared_documents(settings).version(key)


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

