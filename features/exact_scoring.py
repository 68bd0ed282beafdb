"""Every exact score a feature reads, carried by the retrieval legs themselves: one round trip.

``ExactScoring`` holds what one feature set needs Elasticsearch to score for every candidate: the named
clauses (``FeaturePipeline.named_clauses``: per-field BM25 ``match``, the features' extra clauses, the
exact query–document vector similarity as a script) and the ``_source`` fields it reads. ``on_leg`` adds
them to a retrieval leg as optional clauses of its ``post_filter`` (beside a required clause: the leg's own
post filter, or ``match_all``). A filter does not score, so Lucene drops optional clauses beside a required
one and the query phase never runs them: the leg retrieves, orders and scores exactly as without them.
The fetch phase does run them: with ``include_named_queries_score`` every returned hit's
``matched_queries`` carries each named clause's score, whether the hit matched the leg's own query or not
(checked on the node: ``tests/integration/ltr/training/test_pipeline.py``). Each leg carries the
other's scoring, so the legs stay independent searches of one ``_msearch``. (A weight-0 ``rescore``
carries them as well but also scores them in the query phase: on SciFact's 100-hit legs Elasticsearch's
``took`` was 5.40 against 4.25 ms, 3.22 against 2.35 on the index merged into one segment;
``bench/bench_exact_placement.py``, ``bench/results/exact_placement*.json``.)

The vector similarity needs a script language the cluster has (``connector.node.capabilities``):
``hybridrank``'s native ``vector_similarity`` on the managed node, painless ``cosineSimilarity`` on a stock
cluster. Without either, ``vector_clause`` is None and the pipeline scores the window with a search of its
own (``features.pipeline.exact_scores_body``), as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.retrieval.queries import vector_floats
from features.base import DENSE_SCORE, ExactScores
from hybridrank.errors import ClusterError

Body = dict[str, Any]
HYBRIDRANK_LANG = "hybridrank"
PAINLESS_LANG = "painless"
# Painless' cosine as a kNN ``_score`` (cosine similarity: (1 + cos) / 2), what the hybridrank script returns.
PAINLESS_COSINE = "(cosineSimilarity(params.query_vector, params.field) + 1.0) / 2.0"
NAMED_SCORES_PARAM = "include_named_queries_score"


def vector_clause(lang: str | None, field: str, vector: Iterable[float], name: str = DENSE_SCORE) -> Body | None:
    """The named exact vector similarity of every document with a vector, as a kNN hit would score it."""
    values = vector_floats(vector)
    if lang == HYBRIDRANK_LANG:
        script: Body = {"lang": HYBRIDRANK_LANG, "source": "vector_similarity",
                        "params": {"field": field, "query_vector": values}}
    elif lang == PAINLESS_LANG:
        script = {"lang": PAINLESS_LANG, "source": PAINLESS_COSINE, "params": {"field": field, "query_vector": values}}
    else:
        return None
    # ``exists``: a document without a vector does not match, as the kNN clause it replaces (missing, not 0)
    return {"script_score": {"query": {"exists": {"field": field}}, "script": script, "_name": name}}


@dataclass(frozen=True, slots=True)
class ExactScoring:
    """One query's named clauses and source fields; ``signature`` names the clause set (not the query)."""

    clauses: tuple[Body, ...]
    source_fields: tuple[str, ...]
    signature: str

    def on_leg(self, body: Mapping[str, Any]) -> Body:
        """``body`` also scoring every named clause on each hit it returns, its hits, order and scores kept."""
        out = dict(body)
        required = body.get("post_filter", {"match_all": {}})
        out["post_filter"] = {"bool": {"filter": [required], "should": list(self.clauses),
                                       "minimum_should_match": 0}}
        if self.source_fields:
            asked = out.get("_source", True)
            if asked is False:
                out["_source"] = list(self.source_fields)
            elif isinstance(asked, list):
                out["_source"] = list(dict.fromkeys([*asked, *self.source_fields]))
        return out

    def parse(self, hit: Mapping[str, Any]) -> ExactScores:
        """A hit's exact scores as the feature round trip would have given them."""
        named = hit.get("matched_queries") or {}
        if not isinstance(named, dict):  # a cluster that ignored include_named_queries_score: no scores at all
            raise ClusterError("Elasticsearch returned matched_queries without scores; "
                               "include_named_queries_score needs Elasticsearch >= 8.8")
        return ExactScores(named, hit.get("_source") or {})


def clause_signature(context: Mapping[str, Any]) -> str:
    """A short stable name of a clause set (what its clauses score, for which index settings), not of a query."""
    payload = json.dumps(context, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
