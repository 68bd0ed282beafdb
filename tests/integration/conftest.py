"""The real tier: a real Elasticsearch node, started by the suite itself, fresh indices per test.

If ``ES_URL`` points at a running cluster the suite uses it; otherwise it starts the managed local
node (``connector.node.launcher``) on a test port and stops it at the end. A node that cannot be had is a
failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridrank.config import Settings, load_settings
from ltr.evaluation.datasets import shared_datasets_dir

TEST_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_PORT", "9251"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    url = os.environ.get("ES_URL") or os.environ.get("HYBRIDRANK_ES_URL")
    if url:
        yield url
        return
    from connector.node.launcher import LocalElasticsearch

    base = load_settings(None)
    node = LocalElasticsearch.from_settings(base, port=TEST_PORT, name="hybridrank-test")
    node.start(wait_s=180)
    started_here = node.last_start_s is not None  # a node already running (another session's) is left running
    try:
        yield node.url
    finally:
        if started_here:
            node.stop()


@pytest.fixture(scope="session")
def settings(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The project's settings on the test node, with a private home (models, spool, experiments) and
    a test-only events index, so tests never write into a user's cache or events."""
    base = load_settings(None)
    events_index = f"test-events-{uuid.uuid4().hex[:8]}"
    return base.model_copy(update={
        "cluster": base.cluster.model_copy(update={"url": es_url}),
        "home": tmp_path_factory.mktemp("home"),
        "feedback": base.feedback.model_copy(update={"events_index": events_index}),
    })


@pytest.fixture(scope="session")
def es(settings: Settings):  # type: ignore[no-untyped-def]
    from connector.client import make_client

    client = make_client(settings)
    yield client
    client.close()


@pytest.fixture()
def fresh_index(es) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A unique index name; the index (if created) is deleted after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


@pytest.fixture(scope="session")
def embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from connector.embedding.embedder import embedder_from_settings

    # the user's embedding cache (vectors are a pure function of model and text), not the private home
    return embedder_from_settings(settings.model_copy(update={"home": load_settings(None).home}))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    path = shared_datasets_dir()
    if not path.is_dir():
        pytest.fail(f"the shared test collections are missing: {path}")
    return path
