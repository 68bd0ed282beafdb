"""A test's own managed node (its own name, port and data), for tests that stop or kill Elasticsearch:
never the suite's shared node."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from connector.node.launcher import LocalElasticsearch
from hybridrank.config import load_settings


@contextlib.contextmanager
def own_node(port: int, name: str, *, heap: str | None = None) -> Iterator[LocalElasticsearch]:
    """Start the node ``name`` on ``port``; stop it on exit."""
    node = LocalElasticsearch.from_settings(load_settings(None), port=port, name=name, heap=heap)
    node.start(wait_s=180)
    try:
        yield node
    finally:
        node.stop()
