"""The ``cluster`` fixture: the in-memory Elasticsearch of ``tests.support.fake_events_cluster``, emptied."""

from __future__ import annotations

import pytest

from tests.support.fake_events_cluster import FakeCluster


@pytest.fixture()
def cluster() -> type[FakeCluster]:
    FakeCluster.reset()
    return FakeCluster
