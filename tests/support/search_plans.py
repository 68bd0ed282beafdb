"""Planning searches against one profiled index, for the endpoint's request-reading unit tests."""

from __future__ import annotations

from typing import Any

from connector.endpoint import dsl
from hybridrank.config import IndexConfig

PROFILES = {"docs": IndexConfig(candidate_window=100, knn_num_candidates=200)}


def plan(body: dict[str, Any], params: dict[str, str] | None = None, index: str = "docs",
         **kw: Any) -> dsl.SearchPlan | dsl.Passthrough:
    return dsl.plan_search(index, body, params or {}, PROFILES, **kw)
