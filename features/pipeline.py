"""The feature pipeline: an ordered feature set turned into one matrix per query.

Exact scores for EVERY candidate come with the retrieval legs where the cluster can score the vector
similarity in a script (``features.exact_scoring``: each leg carries the named clauses of
``named_clauses`` as optional post-filter clauses, so the window needs one round trip); the candidates then hold
them (``Candidate.exact``) and the pipeline reads them. Otherwise they come from ONE Elasticsearch search
per query (batched through ``_msearch``): restricted to the candidate ids, a ``bool.should`` of the same
named clauses, the vector one as a named ``knn`` (exact: the ids filter leaves few enough documents for a
brute-force search, and ``rescore_vector`` rescores with full-precision vectors), with
``include_named_queries_score``. Training logs and live reranking both call ``compute_many``, with legs
built by the same ``exact_scoring``, so their features are the same bits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from connector.retrieval.hit_ids import hit_id, ids_only, resend_unnamed
from features.base import DENSE_SCORE, ClickStats, ExactScores, Feature, FeatureContext, as_utc, bm25_key
from features.exact_scoring import ExactScoring, clause_signature, vector_clause
from features.matched_terms import distinct_terms, term_key
from features.registry import NEEDS_TIMESTAMP, default_names, resolve_all
from hybridrank.errors import ClusterError, IndexNotFound

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.retrieval.candidates import Candidate
    from hybridrank.config import IndexConfig

Body = dict[str, Any]


def exact_scores_body(
    query_text: str,
    query_vector: Sequence[float] | np.ndarray | None,
    doc_ids: Sequence[str],
    text_fields: Sequence[str],
    vector_field: str,
    *,
    source_fields: Sequence[str] = (),
    term_matches: bool = False,
    extra_clauses: Sequence[Body] = (),
) -> Body:
    """One search scoring exactly the given documents: per-field BM25 and cosine, each named;
    with ``term_matches``, one named clause per distinct query term (``features.matched_terms``);
    ``extra_clauses``: more named clauses features asked for (e.g. ``features.phrase_proximity``)."""
    ids = {"ids": {"values": list(doc_ids)}}
    should = text_clauses(query_text, text_fields, term_matches=term_matches, extra_clauses=extra_clauses)
    if query_vector is not None and len(doc_ids):
        should.append({"knn": {
            "field": vector_field,
            "query_vector": [float(x) for x in query_vector],
            "k": len(doc_ids),
            "num_candidates": len(doc_ids),
            "filter": ids,
            "rescore_vector": {"oversample": 1.0},
            "_name": DENSE_SCORE,
        }})
    return {
        "query": {"bool": {"filter": [ids], "should": should}},
        "size": len(doc_ids),
        "_source": list(source_fields) if source_fields else False,
        "track_total_hits": False,
    }


def text_clauses(query_text: str, text_fields: Sequence[str], *, term_matches: bool = False,
                 extra_clauses: Sequence[Body] = ()) -> list[Body]:
    """The named lexical clauses: per-field BM25, one per distinct query term (with ``term_matches``), extras."""
    should: list[Body] = [{"match": {f: {"query": query_text, "_name": bm25_key(f)}}} for f in text_fields]
    if term_matches:
        should += [{"multi_match": {"query": term, "fields": list(text_fields), "_name": term_key(term)}}
                   for term in distinct_terms(query_text)]
    should += list(extra_clauses)
    return should


def parse_exact_scores(response: dict[str, Any]) -> dict[str, ExactScores]:
    """doc_id -> its named scores (and requested source) from one response of ``exact_scores_body``."""
    out: dict[str, ExactScores] = {}
    for hit in response.get("hits", {}).get("hits", []):
        named = hit.get("matched_queries") or {}
        if isinstance(named, list):  # a cluster that ignored include_named_queries_score
            raise ClusterError("Elasticsearch returned matched_queries without scores; "
                               "include_named_queries_score needs Elasticsearch >= 8.8")
        # Elasticsearch writes scores as JSON floats, so the parsed dict is kept as it is (this loop
        # runs for ~170 hits a query); features still read each value through float().
        out[hit_id(hit)] = ExactScores(named, hit.get("_source") or {})
    return out


@dataclass(frozen=True, slots=True)
class FeatureRequest:
    """One query's input to the pipeline: the candidates in the row order wanted."""

    query_text: str
    query_vector: np.ndarray | None
    candidates: Sequence[Candidate]
    request_time: datetime


class FeaturePipeline:
    """An ordered feature set for one index; ``compute``/``compute_many`` give float64 matrices."""

    def __init__(
        self,
        names: Sequence[str] | None,
        index_config: IndexConfig,
        *,
        click_stats: ClickStats | None = None,
        msearch_batch: int = 32,
    ) -> None:
        self.index_config = index_config
        chosen = list(names) if names else (list(index_config.features) or default_names(index_config))
        self.features: list[Feature] = resolve_all(chosen, index_config)
        self.click_stats = click_stats
        self.msearch_batch = msearch_batch
        fields: list[str] = []
        if index_config.timestamp_field and any(n in NEEDS_TIMESTAMP for n in self.names):
            fields.append(index_config.timestamp_field)
        for feature in self.features:
            fields.extend(getattr(feature, "source_fields", ()))
        self.source_fields = list(dict.fromkeys(fields))
        self.term_matches = any(getattr(f, "needs_term_matches", False) for f in self.features)
        self.term_stats = any(getattr(f, "needs_term_stats", False) for f in self.features)
        builders: dict[str, Callable[[str, Sequence[str]], list[Body]]] = {}
        for feature in self.features:
            build = getattr(feature, "exact_clauses", None)
            if build is not None:
                builders.setdefault(f"{build.__module__}.{build.__qualname__}", build)
        self.clause_builders = list(builders.values())
        self.exact_signature = clause_signature({
            "text_fields": list(index_config.text_fields), "vector_field": index_config.vector_field,
            "term_matches": self.term_matches, "source_fields": self.source_fields, "extra": list(builders)})

    @classmethod
    def from_config(cls, index_config: IndexConfig, *, click_stats: ClickStats | None = None) -> FeaturePipeline:
        return cls(None, index_config, click_stats=click_stats)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature_params(self) -> list[dict[str, Any]]:
        return [{"name": f.name, **f.params()} for f in self.features]

    def context_params(self) -> dict[str, Any]:
        """Index settings that change feature values (and so belong in the config hash)."""
        cfg = self.index_config
        return {"text_fields": dict(cfg.text_fields), "vector_field": cfg.vector_field,
                "timestamp_field": cfg.timestamp_field, "rrf_k": cfg.rrf_k,
                "linear_weight": cfg.linear_weight}

    def config_hash(self) -> str:
        payload = json.dumps({"features": self.feature_params(), "context": self.context_params()},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def exact_scoring(self, query_text: str, query_vector: Sequence[float] | np.ndarray | None,
                      vector_lang: str | None) -> ExactScoring | None:
        """What a retrieval leg carries so that its hits come with every exact score this feature set
        reads (``features.exact_scoring``); None when the cluster has no script to score the vector."""
        clauses = text_clauses(query_text, list(self.index_config.text_fields), term_matches=self.term_matches,
                               extra_clauses=self._extra_clauses(query_text))
        if query_vector is not None:
            vector = vector_clause(vector_lang, self.index_config.vector_field, query_vector)
            if vector is None:
                return None
            clauses.append(vector)
        return ExactScoring(tuple(clauses), tuple(self.source_fields), self.exact_signature)

    # -- computing -----------------------------------------------------------------------------
    def compute(
        self,
        client: Elasticsearch,
        index: str,
        query_text: str,
        query_vector: np.ndarray | None,
        candidates: Sequence[Candidate],
        *,
        request_time: datetime,
    ) -> np.ndarray:
        """The ``len(candidates) x len(names)`` matrix for one query (rows in candidate order)."""
        request = FeatureRequest(query_text, query_vector, list(candidates), request_time)
        return self.compute_many(client, index, [request])[0]

    def compute_many(self, client: Elasticsearch, index: str, requests: Sequence[FeatureRequest]) -> list[np.ndarray]:
        """One matrix per request; one ``_msearch`` per ``msearch_batch`` queries."""
        out: list[np.ndarray] = []
        for start in range(0, len(requests), self.msearch_batch):
            batch = list(requests[start : start + self.msearch_batch])
            exact = self._fetch_exact(client, index, batch)
            idf = self._fetch_term_idf(client, index, batch) if self.term_stats else [None] * len(batch)
            out.extend(self.matrix(req, scores, term_idf=q_idf)
                       for req, scores, q_idf in zip(batch, exact, idf, strict=True))
        return out

    def matrix(self, request: FeatureRequest, exact: dict[str, ExactScores], *,
               term_idf: tuple[float, ...] | None = None) -> np.ndarray:
        """Evaluate every feature on every candidate, given the exact scores (and term IDFs) already fetched."""
        ctx = FeatureContext(
            query_text=request.query_text,
            query_vector=request.query_vector,
            request_time=as_utc(request.request_time),
            index_config=self.index_config,
            exact=exact,
            click_stats=self.click_stats,
            candidates=request.candidates,
            term_idf=term_idf,
        )
        values = np.empty((len(request.candidates), len(self.features)), dtype=np.float64)
        for j, feature in enumerate(self.features):
            column = getattr(feature, "column", None)  # the whole window at once, where a feature can
            if column is not None:
                values[:, j] = column(ctx)
                continue
            for i, cand in enumerate(request.candidates):
                values[i, j] = feature.value(ctx, cand)
        return values

    def _fetch_exact(self, client: Elasticsearch, index: str,
                     batch: list[FeatureRequest]) -> list[dict[str, ExactScores]]:
        from connector.client import translate_errors

        cfg = self.index_config
        results: list[dict[str, ExactScores]] = [{} for _ in batch]
        slots: list[int] = []
        for i, req in enumerate(batch):
            carried = self._carried(req.candidates)
            if carried is not None:
                results[i] = carried
            elif req.candidates:
                slots.append(i)
        if not slots:
            return results

        def send() -> list[dict[str, Any]]:
            searches: list[Body] = []
            for i in slots:
                req = batch[i]
                ids = list(dict.fromkeys(c.doc_id for c in req.candidates))
                searches.extend(({"index": index}, ids_only(exact_scores_body(
                    req.query_text, req.query_vector, ids, list(cfg.text_fields), cfg.vector_field,
                    source_fields=self.source_fields, term_matches=self.term_matches,
                    extra_clauses=self._extra_clauses(req.query_text)), index)))
            with translate_errors(index):
                response = client.msearch(searches=searches, include_named_queries_score=True)
            responses: list[dict[str, Any]] = response["responses"]
            return responses

        for slot, result in zip(slots, resend_unnamed(index, send), strict=True):
            if "error" in result:
                _raise_search_error(index, result)
            results[slot] = parse_exact_scores(result)
        return results

    def needs_io(self, candidates: Sequence[Candidate]) -> bool:
        """Whether computing the features of ``candidates`` asks Elasticsearch (else it is CPU only)."""
        return self.term_stats or (bool(candidates) and not self._all_carried(candidates))

    def _all_carried(self, candidates: Sequence[Candidate]) -> bool:
        """Whether every candidate holds this feature set's exact scores (``_carried`` would give them),
        asked without building the dict: the endpoint asks it of every reranked window before ranking it."""
        signature = self.exact_signature
        return all([c.exact is not None and c.exact_by == signature for c in candidates])

    def _carried(self, candidates: Sequence[Candidate]) -> dict[str, ExactScores] | None:
        """The exact scores the legs brought (``features.exact_scoring``), if every candidate has this
        feature set's; None means they must be fetched."""
        if not self._all_carried(candidates):
            return None
        return {c.doc_id: c.exact for c in candidates if c.exact is not None}

    def _extra_clauses(self, query_text: str) -> list[Body]:
        fields = list(self.index_config.text_fields)
        return [clause for build in self.clause_builders for clause in build(query_text, fields)]

    def _fetch_term_idf(self, client: Elasticsearch, index: str,
                        batch: list[FeatureRequest]) -> list[tuple[float, ...] | None]:
        """The IDF of each query's analysed terms: one ``_mtermvectors`` for the whole batch."""
        from connector.client import translate_errors
        from features.query_idf import idf_from_term_vectors, term_stats_doc

        fields = list(self.index_config.text_fields)
        docs = [term_stats_doc(index, req.query_text, fields) for req in batch]
        with translate_errors(index):
            response = client.mtermvectors(docs=docs)
        entries: list[dict[str, Any]] = list(response["docs"])
        return [None if "error" in e else idf_from_term_vectors(e) for e in entries]


def _raise_search_error(index: str, result: dict[str, Any]) -> None:
    error = result["error"]
    if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
        raise IndexNotFound(index)
    reason = error.get("reason", error) if isinstance(error, dict) else error
    causes = error.get("root_cause") if isinstance(error, dict) else None
    if causes and isinstance(causes[0], dict) and causes[0].get("reason"):
        reason = f"{reason} ({causes[0]['reason']})"
    raise ClusterError(f"feature scores on [{index}] failed: {reason}", status=int(result.get("status", 500)),
                       error_type=error.get("type", "search_error") if isinstance(error, dict) else "search_error")
