"""What the endpoint's requests share: settings, the upstream, the embedder, rankers, experiments, events.

Every handler (``connector.endpoint.search``, ``.msearch``, ``.passthrough``, ``.own_routes``) is a
function of this state and the request; ``connector.endpoint.app.Endpoint`` is this state plus the
Starlette app that routes to them. The embedder and the ranker holder load on first use (the
lifespan warms them up); the upstream client exists while the app runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from anyio import CapacityLimiter

from connector.client import cluster_url, make_client
from connector.endpoint.assignment import Experiments
from connector.endpoint.impressions import Impressions
from connector.endpoint.metrics import Metrics
from connector.endpoint.serving import RankerHolder, learned_holder
from connector.endpoint.upstream import Upstream
from connector.events.spool import EventLog
from hybridrank.config import Settings
from ltr.experiments.store import ExperimentStore

if TYPE_CHECKING:
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
        experiments_check_s: float = 1.0,
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
        self.events = event_log or EventLog.from_settings(settings, url=self.upstream_url,
                                                          registry=self.metrics.registry)
        self.experiments = Experiments(experiments or ExperimentStore(settings.experiments_file),
                                       lambda: self.holder, check_s=experiments_check_s)
        self.impressions = Impressions(settings, self.profiles, self.events, upstream_url=self.upstream_url)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from connector.embedding.embedder import embedder_from_settings

            self._embedder = embedder_from_settings(self.settings)
        return self._embedder

    @property
    def holder(self) -> RankerHolder:
        if self._holder is None:
            self._holder = learned_holder(self.settings, lambda: make_client(self.settings, url=self.upstream_url))
        return self._holder

    @property
    def post_response_work(self) -> int:
        """Feature snapshots still being computed after their responses (their impressions are not queued yet)."""
        return self.impressions.pending
