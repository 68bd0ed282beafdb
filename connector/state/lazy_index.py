"""The client of one state index, made on first use, which creates the index (one shard, a copy on every node)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


class LazyIndex:
    """Calls on ``index`` through a client made on first use; the index is created then if missing."""

    def __init__(self, client_factory: Callable[[], Elasticsearch], index: str, mappings: dict[str, Any]) -> None:
        self._client_factory = client_factory
        self._client: Elasticsearch | None = None
        self._lock = threading.Lock()
        self.index = index
        self.mappings = mappings

    def call(self, action: Callable[[Elasticsearch], Any]) -> Any:
        """``action(client)`` with Elasticsearch's errors translated (``connector.client.translate_errors``)."""
        from connector.client import translate_errors

        with translate_errors(self.index):
            return action(self._get_client())

    def _get_client(self) -> Elasticsearch:
        with self._lock:
            if self._client is None:
                client = self._client_factory()
                if not client.indices.exists(index=self.index):
                    # 400 = created meanwhile by another replica
                    client.options(ignore_status=400).indices.create(
                        index=self.index, mappings=self.mappings,
                        settings={"number_of_shards": 1, "auto_expand_replicas": "0-all"})
                # a new index answers reads only once its primary is assigned
                client.cluster.health(index=self.index, wait_for_status="yellow", timeout="30s")
                self._client = client
            return self._client
