"""Synthetic users driving the real endpoint: search with the official client, click, post the clicks.

What a user clicks is decided by a ``ClickModel`` (``ltr.clicks.simulated_users``: DESIGN.md's
position-based users, optionally preferring recent documents or differing in how much they click);
this module runs the sessions and delivers the clicks.

Each session is one user (``u0042``, sent as ``X-Hybridrank-User``; ``X-Hybridrank-Session`` too)
issuing one query through the endpoint, reading the ``X-Request-Id`` of the answer, deciding clicks
on the ranking shown, and posting each click to ``POST /_hybridrank/events``. A session's user,
query and clicks come from its own RNG seeded by ``(seed, session number)``, so a run is
reproducible whatever the thread timing. A click that cannot be posted after retries is counted as
lost, with its reason — never dropped silently.

One idea at ~360 lines: a session's plan, its run against the endpoint with retries, and the report of
the runs read best together (the report counts what the session loop decides).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connector.endpoint.wire import EXPERIMENT_HEADER, RANKER_HEADER, REQUEST_ID_HEADER, SESSION_HEADER, USER_HEADER
from connector.events.schema import click_event_id
from hybridrank.errors import ClusterUnavailable, DataError
from ltr.clicks.simulated_users import ClickModel, ShownDoc, SimClick, relative_level

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

EVENTS_PATH = "/_hybridrank/events"
HEALTH_PATH = "/_hybridrank/health"
NO_EXPERIMENT = "(none)"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# ---------------------------------------------------------------------------------------------
# sessions


@dataclass(frozen=True)
class SessionPlan:
    number: int
    user_id: str
    session_id: str
    query_id: str
    query_text: str


@dataclass
class SessionResult:
    plan: SessionPlan
    ok: bool = False
    error: str | None = None
    request_id: str | None = None
    experiment: str = NO_EXPERIMENT
    reranked: bool = False
    shown: list[ShownDoc] = field(default_factory=list)
    clicks: list[SimClick] = field(default_factory=list)
    accepted: int = 0
    post_attempts: int = 0
    lost: list[str] = field(default_factory=list)  # reason per lost click


@dataclass
class SimulationReport:
    """What a run did. ``clicks_lost`` clicks were decided but could not be posted (see ``lost_reasons``)."""

    sessions: int = 0
    users: int = 0
    searches_ok: int = 0
    searches_failed: int = 0
    searches_reranked: int = 0
    searches_unranked: int = 0  # answered without X-Hybridrank-Ranker: the index has no profile
    results_shown: int = 0
    clicks_posted: int = 0
    clicks_accepted: int = 0
    clicks_lost: int = 0
    post_attempts: int = 0
    variant_searches: Counter[str] = field(default_factory=Counter)
    variant_clicks: Counter[str] = field(default_factory=Counter)
    clicked_positions: Counter[int] = field(default_factory=Counter)
    search_failures: Counter[str] = field(default_factory=Counter)
    lost_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, result: SessionResult) -> None:
        self.sessions += 1
        if not result.ok:
            self.searches_failed += 1
            self.search_failures[result.error or "unknown"] += 1
            return
        self.searches_ok += 1
        if result.reranked:
            self.searches_reranked += 1
        else:
            self.searches_unranked += 1
        self.results_shown += len(result.shown)
        self.variant_searches[result.experiment] += 1
        self.variant_clicks[result.experiment] += len(result.clicks)
        self.clicks_posted += len(result.clicks)
        self.clicks_accepted += result.accepted
        self.clicks_lost += len(result.lost)
        self.post_attempts += result.post_attempts
        self.lost_reasons.update(result.lost)
        self.clicked_positions.update(c.position for c in result.clicks)

    @property
    def ctr(self) -> float:
        """Clicks per successful search."""
        return self.clicks_posted / self.searches_ok if self.searches_ok else 0.0

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["clicked_positions"] = {str(k): v for k, v in sorted(self.clicked_positions.items())}
        for key in ("variant_searches", "variant_clicks", "search_failures", "lost_reasons"):
            raw[key] = dict(getattr(self, key))
        raw["ctr"] = round(self.ctr, 4)
        return raw


class _Retryable(Exception):
    """A click post that may succeed if tried again (connection trouble, 429, 5xx)."""


class _PostRejected(Exception):
    """The endpoint refused the click for good (4xx other than 408/425/429)."""


def session_rng(seed: int, number: int, stream: int) -> np.random.Generator:
    """The RNG of one session's ``stream`` (0: who and what, 1: clicks): independent of thread timing."""
    return np.random.default_rng([seed, number, stream])


class Simulator:
    """Synthetic users searching ``index`` through the endpoint at ``endpoint_url`` and clicking."""

    def __init__(
        self,
        endpoint_url: str,
        index: str,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        click_model: ClickModel,
        *,
        users: int = 100,
        seed: int = 0,
        workers: int = 4,
        size: int = 10,
        query_fields: Sequence[str] = ("title", "text"),
        timestamp_field: str = "",
        request_timeout_s: float = 30.0,
        post_attempts: int = 4,
        retry_wait_s: float = 0.2,
        search_client: Elasticsearch | None = None,
        events_client: httpx.Client | None = None,
        top_grade: float | None = None,
    ) -> None:
        if not queries:
            raise DataError("no queries to simulate: the split is empty")
        if users < 1:
            raise ValueError(f"users must be >= 1, got {users}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.index = index
        self.query_ids = sorted(queries)
        self.queries = dict(queries)
        self.qrels = qrels
        # grades are relative to the collection's top grade (DESIGN.md): binary "relevant" is the top level
        self.top_grade = top_grade if top_grade is not None else max(
            (g for judged in qrels.values() for g in judged.values()), default=1)
        self.click_model = click_model
        self.users = users
        self.seed = seed
        self.workers = max(1, workers)
        self.size = size
        self.query_fields = list(query_fields)
        self.timestamp_field = timestamp_field
        self.post_attempts = max(1, post_attempts)
        self.retry_wait_s = retry_wait_s
        self._own_clients = search_client is None, events_client is None
        if search_client is None:
            from elasticsearch import Elasticsearch

            search_client = Elasticsearch(self.endpoint_url, request_timeout=request_timeout_s, max_retries=2,
                                          retry_on_status=(502, 503, 504))
        self.search_client = search_client
        self.events_client = events_client or httpx.Client(base_url=self.endpoint_url, timeout=request_timeout_s)

    def close(self) -> None:
        if self._own_clients[0]:
            self.search_client.close()
        if self._own_clients[1]:
            self.events_client.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- planning -------------------------------------------------------------------------------------
    def plan(self, number: int) -> SessionPlan:
        """Session ``number``: which user, which query (uniform over the given queries)."""
        rng = session_rng(self.seed, number, 0)
        user = int(rng.integers(self.users))
        qid = self.query_ids[int(rng.integers(len(self.query_ids)))]
        width = max(4, len(str(self.users - 1)))
        return SessionPlan(number=number, user_id=f"u{user:0{width}d}", session_id=f"s{self.seed}-{number:06d}",
                           query_id=qid, query_text=self.queries[qid])

    def search_body(self, text: str) -> dict[str, Any]:
        """The app-side query: a plain ``multi_match`` over the profile's text fields."""
        query: dict[str, Any] = (
            {"match": {self.query_fields[0]: text}} if len(self.query_fields) == 1
            else {"multi_match": {"query": text, "fields": self.query_fields}}
        )
        source: Any = [self.timestamp_field] if self.timestamp_field and self.click_model.needs_timestamps else False
        return {"query": query, "size": self.size, "source": source}

    # -- one session ----------------------------------------------------------------------------------
    def run_session(self, plan: SessionPlan) -> SessionResult:
        from elasticsearch import ApiError, TransportError

        result = SessionResult(plan=plan)
        headers = {USER_HEADER: plan.user_id, SESSION_HEADER: plan.session_id}
        try:
            response = self.search_client.options(headers=headers).search(
                index=self.index, **self.search_body(plan.query_text))
        except ApiError as exc:
            result.error = f"HTTP {exc.meta.status}: {exc.error}"
            return result
        except TransportError as exc:
            result.error = f"{type(exc).__name__}: {exc.message}"
            return result
        result.ok = True
        meta_headers = response.meta.headers
        result.request_id = meta_headers.get(REQUEST_ID_HEADER)
        result.experiment = meta_headers.get(EXPERIMENT_HEADER) or NO_EXPERIMENT
        result.reranked = bool(meta_headers.get(RANKER_HEADER))
        judged = self.qrels.get(plan.query_id, {})
        for position, hit in enumerate(response.body.get("hits", {}).get("hits", []), start=1):
            doc_id = str(hit["_id"])
            level = relative_level(judged.get(doc_id, 0), self.top_grade)
            result.shown.append(ShownDoc(doc_id, position, level, self._timestamp(hit.get("_source"))))
        result.clicks = self.click_model.clicks(result.shown, session_rng(self.seed, plan.number, 1), plan.user_id)
        for click in result.clicks:
            if result.request_id is None:
                result.lost.append(f"no {REQUEST_ID_HEADER} in the search response")
                continue
            outcome = self.post_click(plan, result.request_id, click)
            result.post_attempts += outcome[1]
            if outcome[0] is None:
                result.accepted += 1
            else:
                result.lost.append(outcome[0])
        return result

    def _timestamp(self, source: Any) -> datetime | None:
        if not self.timestamp_field or not isinstance(source, dict):
            return None
        from features.freshness import parse_timestamp

        return parse_timestamp(source.get(self.timestamp_field))

    def click_event(self, plan: SessionPlan, request_id: str, click: SimClick) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "click", "request_id": request_id, "doc_id": click.doc_id,
                                 "event_id": click_event_id(request_id, click.doc_id), "user_id": plan.user_id}
        if click.dwell_ms is not None:
            event["dwell_ms"] = click.dwell_ms
        return event

    def post_click(self, plan: SessionPlan, request_id: str, click: SimClick) -> tuple[str | None, int]:
        """POST one click (retried on connection errors, 429 and 5xx); (None, attempts) when accepted,
        else (the reason it is lost, attempts). The event id makes a retried click count once."""
        event = self.click_event(plan, request_id, click)
        headers = {USER_HEADER: plan.user_id, SESSION_HEADER: plan.session_id}
        attempts = 0

        def once() -> None:
            nonlocal attempts
            attempts += 1
            try:
                response = self.events_client.post(EVENTS_PATH, json=event, headers=headers)
            except httpx.TransportError as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            if response.is_success:
                return
            reason = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code in _RETRY_STATUSES:
                raise _Retryable(reason)
            raise _PostRejected(reason)

        retrying = Retrying(stop=stop_after_attempt(self.post_attempts),
                            wait=wait_exponential(multiplier=self.retry_wait_s, max=max(self.retry_wait_s * 10, 0)),
                            retry=retry_if_exception_type(_Retryable), reraise=True)
        try:
            retrying(once)
        except (_Retryable, _PostRejected) as exc:
            return str(exc), attempts
        return None, attempts

    # -- a run --------------------------------------------------------------------------------------
    def run(self, sessions: int, *, on_session: Callable[[SessionResult], None] | None = None) -> SimulationReport:
        """``sessions`` sessions on a pool of ``workers`` threads; results merge in session order."""
        results: dict[int, SessionResult] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="simulate") as pool:
            futures = [pool.submit(self.run_session, self.plan(n)) for n in range(sessions)]
            for future in as_completed(futures):
                res = future.result()
                results[res.plan.number] = res
                if on_session is not None:
                    on_session(res)
        report = SimulationReport()
        for n in sorted(results):
            report.add(results[n])
        report.users = len({r.plan.user_id for r in results.values()})
        return report


# ---------------------------------------------------------------------------------------------
# the endpoint, before a run


@dataclass(frozen=True)
class EndpointStatus:
    url: str
    hybridrank: bool  # the health route answered: a hybridrank endpoint, not plain Elasticsearch
    profiles: tuple[str, ...]
    index_profiled: bool


def probe_endpoint(url: str, index: str, *, client: httpx.Client | None = None,
                   timeout_s: float = 5.0) -> EndpointStatus:
    """Is something answering at ``url``, is it our endpoint, and does ``index`` have a ranking profile?

    ``ClusterUnavailable`` when nothing answers (with the command that starts the endpoint).
    """
    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    base = url.rstrip("/")
    try:
        response = http.get(f"{base}{HEALTH_PATH}")
    except httpx.TransportError as exc:
        raise ClusterUnavailable(
            f"the endpoint at {base} is not reachable ({type(exc).__name__}: {exc}); start it with "
            f"`hybridrank serve` or pass --endpoint") from exc
    finally:
        if own:
            http.close()
    profiles: tuple[str, ...] = ()
    ours = False
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("profiles"), list):
            ours = True
            profiles = tuple(str(p) for p in body["profiles"])
    return EndpointStatus(url=base, hybridrank=ours, profiles=profiles, index_profiled=index in profiles)
