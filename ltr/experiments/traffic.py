"""An experiment's logged traffic, for ``hybridrank ab status``: searches and users per experiment and variant.

One aggregation over the events index (size 0) counts every listed experiment's impressions,
distinct users and last search at once, without reading a single impression. The experiments
file, not the cluster, says which experiments exist, so a cluster that cannot be reached leaves the
traffic unknown (a warning) instead of failing the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hybridrank.errors import ClusterError, IndexNotFound
from ltr.experiments.store import Experiment

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from hybridrank.config import Settings


def traffic_query(experiment_ids: list[str]) -> dict[str, Any]:
    """Search body: impressions and distinct users per experiment and variant (size 0, aggregations)."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"type": "impression"}},
                                      {"terms": {"experiment": experiment_ids}}]}},
        "aggs": {"experiments": {
            "terms": {"field": "experiment", "size": max(len(experiment_ids), 1)},
            "aggs": {"users": {"cardinality": {"field": "user_id"}},
                     "last": {"max": {"field": "@timestamp"}},
                     "variants": {"terms": {"field": "variant", "size": 50, "missing": "(interleaved)"},
                                  "aggs": {"users": {"cardinality": {"field": "user_id"}}}}}}},
    }


def read_traffic(client: Elasticsearch, events_index: str, experiment_ids: list[str]) -> dict[str, dict[str, Any]]:
    """{experiment id: {"impressions", "users", "last", "variants": {name: impressions}}}; empty if no index."""
    from connector.client import translate_errors

    try:
        with translate_errors(index=events_index):
            resp = client.search(index=events_index, **traffic_query(experiment_ids))
    except IndexNotFound:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for bucket in resp["aggregations"]["experiments"]["buckets"]:
        out[bucket["key"]] = {
            "impressions": bucket["doc_count"], "users": bucket["users"]["value"],
            "last": bucket["last"].get("value_as_string"),
            "variants": {v["key"]: v["doc_count"] for v in bucket["variants"]["buckets"]}}
    return out


def experiment_traffic(settings: Settings,
                       experiments: Sequence[Experiment]) -> tuple[list[dict[str, Any]], str | None]:
    """Each experiment as JSON with its ``traffic`` (zero when none is logged), and a warning when the
    cluster could not say (then every traffic is zero)."""
    from connector.client import make_client

    warning = None
    try:
        client = make_client(settings)
        try:
            traffic = read_traffic(client, settings.feedback.events_index, [e.id for e in experiments])
        finally:
            client.close()
    except ClusterError as exc:
        traffic, warning = {}, f"traffic unknown: {exc}"
    rows = [{**e.to_json(), "traffic": traffic.get(e.id, {"impressions": 0, "users": 0, "variants": {}})}
            for e in experiments]
    return rows, warning
