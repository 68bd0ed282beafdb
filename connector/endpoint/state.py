"""What the endpoint's requests share: settings, the upstream, the embedder, rankers, experiments, events.

Every handler (``connector.endpoint.search``, ``.msearch``, ``.passthrough``, ``.own_routes``) is a
function of this state and the request; ``connector.endpoint.app.Endpoint`` is this state plus the
Starlette app that routes to them. The embedder and the ranker holder load on first use (the
lifespan warms them up); the upstream client exists while the app runs.

Both clients that talk to Elasticsearch for apps — ``upstream`` (async: legs, page, pass-through) and
``caller_client`` (sync, in worker threads: the features' exact scores, impression snapshots) — have
no credentials of their own; each request carries the app's (``connector.credentials``). The
configured credentials serve the endpoint's own work only (the event log's shipping).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from anyio import CapacityLimiter

from connector.client import cluster_url, make_client
from connector.endpoint.assignment import Experiments
from connector.endpoint.auth import OwnRoutesAuth
from connector.endpoint.impressions import Impressions
from connector.endpoint.metrics import Metrics
from connector.endpoint.serving import RankerHolder, learned_holder
from connector.endpoint.upstream import Upstream
from connector.events.spool import EventLog
from hybridrank.config import Settings
from ltr.experiments.store import ExperimentStore

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.embedding.embedder import Embedder


class EndpointState:
    """The state one endpoint shares between requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        upstream_url: str | None = None,
        embedder: Embedder | None = None,
        holder: RankerHolder | None = None,
        connect_timeout_s: float = 1.0,
        embed_concurrency: int = 2,
        torch_threads: int | None = None,
        warm_up: bool = True,
        upstream_transport: Any = None,
        event_log: EventLog | None = None,
        experiments: ExperimentStore | None = None,
        experiments_check_s: float | None = None,
        caller_client_factory: Callable[[], Elasticsearch] | None = None,
    ) -> None:
        self.settings = settings
        self.profiles = dict(settings.indices)
        self.upstream_url = (upstream_url or cluster_url(settings)).rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self._embedder = embedder
        self._holder = holder
        self.metrics = Metrics()
        # Single queries: one intra-op thread each (on 2 shared cores, torch with 2 threads per query is
        # ~8x slower under load than 1), at most ``embed_concurrency`` at a time.
        self.embed_limiter = CapacityLimiter(embed_concurrency)
        self.torch_threads = torch_threads
        self.vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # hits skip the worker-thread hop
        self.vector_cache_size = settings.embedding.query_cache_size
        self.warm_up = warm_up
        self.upstream: Upstream | None = None  # set by the app's lifespan
        self.upstream_transport = upstream_transport  # tests fake Elasticsearch at the transport
        self.vector_script_lang: str | None = "?"  # "?" until asked (``connector.endpoint.leg_scoring``)
        self._caller_client_factory = caller_client_factory or (
            lambda: make_client(settings, url=self.upstream_url, anonymous=True))
        self._caller_client: Elasticsearch | None = None
        self._caller_lock = threading.Lock()
        self.own_routes_auth = OwnRoutesAuth(settings)
        self.events = event_log or EventLog.from_settings(settings, url=self.upstream_url,
                                                          registry=self.metrics.registry)
        self.experiments = Experiments(experiments or ExperimentStore.from_settings(settings), lambda: self.holder,
                                       check_s=settings.state.refresh_s if experiments_check_s is None
                                       else experiments_check_s)
        self.impressions = Impressions(settings, self.profiles, self.events, caller_client=self.caller_client)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from connector.embedding.embedder import embedder_from_settings

            self._embedder = embedder_from_settings(self.settings)
        return self._embedder

    @property
    def holder(self) -> RankerHolder:
        if self._holder is None:
            self._holder = learned_holder(self.settings, self.caller_client)
        return self._holder

    def caller_client(self) -> Elasticsearch:
        """The sync client that acts for apps (no credentials of its own: ``on_behalf_of`` adds theirs)."""
        with self._caller_lock:
            if self._caller_client is None:
                self._caller_client = self._caller_client_factory()
            return self._caller_client

    def close_clients(self) -> None:
        with self._caller_lock:
            if self._caller_client is not None:
                self._caller_client.close()
                self._caller_client = None

    @property
    def post_response_work(self) -> int:
        """Feature snapshots still being computed after their responses (their impressions are not queued yet)."""
        return self.impressions.pending
