"""How parallel feature logging cuts the queries: contiguous, near-equal, in order, none empty."""

from __future__ import annotations

import pytest

from ltr.training.parallel_log import shards


@pytest.mark.parametrize(("n", "workers", "sizes"), [(10, 2, [5, 5]), (7, 3, [3, 2, 2]), (2, 4, [1, 1]), (5, 1, [5])])
def test_queries_are_cut_into_contiguous_shards_in_order(n: int, workers: int, sizes: list[int]) -> None:
    items = [(f"q{i}", f"text {i}") for i in range(n)]
    cut = shards(items, workers)
    assert [len(s) for s in cut] == sizes
    assert [item for shard in cut for item in shard] == items
