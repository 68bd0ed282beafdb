"""The one executor that sends retrieval bodies to Elasticsearch and returns candidate windows.

Every mode runs the legs it needs in one ``_msearch`` round trip per batch of queries:

- ``bm25``  lexical leg alone          - ``knn``    dense leg alone
- ``es``    Elasticsearch's own ``query`` + ``knn`` sum, plus both legs for their scores and ranks
- ``rrf``   reciprocal rank fusion     - ``linear`` min-max normalised weighted sum

Every candidate carries both legs' raw scores and ranks where that leg found it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from connector.client import translate_errors
from connector.retrieval import hit_ids, queries
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate, merge_legs
from connector.retrieval.fusion import FUSIONS, ordered
from hybridrank.config import IndexConfig
from hybridrank.errors import ClusterError, HybridRankError, IndexNotFound

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.embedding.embedder import Embedder
    from features.exact_scoring import ExactScoring

# (query text, query vector) -> what both legs carry so their hits bring the features' exact scores
Scoring = Callable[[str, np.ndarray], "ExactScoring | None"]

ES_HYBRID = "es"
MODES: tuple[str, ...] = ("bm25", "knn", ES_HYBRID, "rrf", "linear")


@dataclass(frozen=True, slots=True)
class QueryLegs:
    """One query's retrieved legs, before fusion: merged candidates and (for ``es``) ES's own order."""

    candidates: dict[str, Candidate]
    window: int
    es_hits: list[dict[str, Any]] | None = None


class Retriever:
    """Retrieve candidate windows from one index with any mode."""

    def __init__(self, client: Elasticsearch, index: str, config: IndexConfig, embedder: Embedder) -> None:
        self.client = client
        self.index = index
        self.config = config
        self.embedder = embedder
        self._vector_lang: tuple[str | None] | None = None

    @property
    def vector_script_lang(self) -> str | None:
        """The cluster's script language for exact vector similarity (asked once; ``connector.node.capabilities``)."""
        if self._vector_lang is None:
            from connector.node.capabilities import detect_vector_script_lang

            self._vector_lang = (detect_vector_script_lang(self.client),)
        return self._vector_lang[0]

    # -- public API ---------------------------------------------------------------------------
    def search(
        self,
        query_text: str,
        *,
        mode: str = "linear",
        window: int | None = None,
        filters: Sequence[dict[str, Any]] = (),
        source: bool | Sequence[str] = False,
    ) -> list[Candidate]:
        """The fused, ordered candidate window for one query."""
        return self.search_many([query_text], mode=mode, window=window, filters=filters, source=source)[0]

    def search_many(
        self,
        query_texts: Sequence[str],
        *,
        mode: str = "linear",
        window: int | None = None,
        filters: Sequence[dict[str, Any]] = (),
        source: bool | Sequence[str] = False,
    ) -> list[list[Candidate]]:
        check_mode(mode)
        legs = self.legs_many(query_texts, window=window, filters=filters, source=source,
                              with_es_hybrid=mode == ES_HYBRID)
        return [self.fuse(q, mode) for q in legs]

    def legs_many(
        self,
        query_texts: Sequence[str],
        *,
        window: int | None = None,
        filters: Sequence[dict[str, Any]] = (),
        source: bool | Sequence[str] = False,
        with_es_hybrid: bool = False,
        batch_size: int = 64,
        scoring: Scoring | None = None,
    ) -> list[QueryLegs]:
        """Both legs (and optionally ES's own hybrid) for many queries, one ``_msearch`` per batch; with
        ``scoring``, both legs carry each query's named clauses and the candidates their exact scores."""
        if any(not (q or "").strip() for q in query_texts):
            raise HybridRankError("empty query text: every query needs at least one non-space character")
        size = window or self.config.candidate_window
        out: list[QueryLegs] = []
        for start in range(0, len(query_texts), batch_size):
            batch = list(query_texts[start : start + batch_size])
            vectors = self._query_vectors(batch)
            per_query = 3 if with_es_hybrid else 2
            scorings = [scoring(text, vector) if scoring is not None else None
                        for text, vector in zip(batch, vectors, strict=True)]
            responses = hit_ids.resend_unnamed(self.index, functools.partial(
                self._send_legs, batch, vectors, size, filters, source, with_es_hybrid, scorings))
            for i in range(len(batch)):
                group = responses[i * per_query : (i + 1) * per_query]
                candidates = merge_legs(self.index, {LEXICAL: _hits(group[0]), DENSE: _hits(group[1])}, scorings[i])
                out.append(QueryLegs(candidates, size, _hits(group[2]) if with_es_hybrid else None))
        return out

    def fuse(self, legs: QueryLegs, mode: str) -> list[Candidate]:
        """Order one query's candidates by ``mode``; each call works on fresh copies."""
        check_mode(mode)
        cands = {doc_id: _copy(c) for doc_id, c in legs.candidates.items()}
        if mode == ES_HYBRID:
            if legs.es_hits is None:
                raise HybridRankError("mode 'es' needs legs retrieved with with_es_hybrid=True")
            window: list[Candidate] = []
            for hit in legs.es_hits:
                doc_id = hit_ids.hit_id(hit)
                cand = cands.get(doc_id) or Candidate(doc_id=doc_id, index=self.index, source=hit.get("_source") or {})
                cand.fused_score = float(hit["_score"])
                window.append(cand)
            return window
        fusion = FUSIONS[mode]
        fusion(cands.values(), k=self.config.rrf_k, weight=self.config.linear_weight)
        if mode in (LEXICAL, DENSE):
            return ordered(c for c in cands.values() if mode in c.leg_ranks)
        return ordered(cands.values())[: legs.window]

    # -- internals ------------------------------------------------------------------------------
    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        # One query at a time through the cached live path: a batched encode differs from it in the
        # last bits, and training logs must see exactly the vectors serving sees.
        return np.stack([self.embedder.encode_query(text) for text in texts])

    def _send_legs(self, texts: list[str], vectors: np.ndarray, size: int, filters: Sequence[dict[str, Any]],
                   source: bool | Sequence[str], with_es_hybrid: bool,
                   scorings: Sequence[ExactScoring | None]) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        for text, vector, scoring in zip(texts, vectors, scorings, strict=True):
            legs = self._leg_bodies(text, vector, size, filters, source, with_es_hybrid)
            if scoring is not None:
                legs[:2] = [scoring.on_leg(leg) for leg in legs[:2]]
            bodies.extend(hit_ids.ids_only(body, self.index) for body in legs)
        return self._msearch(bodies, named_scores=any(s is not None for s in scorings))

    def _leg_bodies(
        self,
        text: str,
        vector: np.ndarray,
        size: int,
        filters: Sequence[dict[str, Any]],
        source: bool | Sequence[str],
        with_es_hybrid: bool,
    ) -> list[dict[str, Any]]:
        cfg = self.config
        num_candidates = max(cfg.knn_num_candidates, size)
        bodies = [
            queries.bm25_body(text, cfg.text_fields, size=size, filters=filters, source=source),
            queries.knn_body(vector, cfg.vector_field, k=size, num_candidates=num_candidates,
                             filters=filters, source=source),
        ]
        if with_es_hybrid:
            bodies.append(queries.es_hybrid_body(text, vector, cfg.text_fields, cfg.vector_field, size=size,
                                                 num_candidates=num_candidates, filters=filters, source=source))
        return bodies

    def _msearch(self, bodies: list[dict[str, Any]], *, named_scores: bool = False) -> list[dict[str, Any]]:
        searches: list[dict[str, Any]] = []
        for body in bodies:
            searches.extend(({"index": self.index}, body))
        with translate_errors(self.index):
            response = self.client.msearch(searches=searches, include_named_queries_score=True) if named_scores \
                else self.client.msearch(searches=searches)
        results: list[dict[str, Any]] = response["responses"]
        for result in results:
            if "error" in result:
                error = result["error"]
                if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                    raise IndexNotFound(self.index)
                reason = error.get("reason", error) if isinstance(error, dict) else error
                raise ClusterError(f"search on [{self.index}] failed: {reason}",
                                   status=int(result.get("status", 500)),
                                   error_type=error.get("type", "search_error") if isinstance(error, dict)
                                   else "search_error")
        return results


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise HybridRankError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")


def _hits(response: dict[str, Any]) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = response.get("hits", {}).get("hits", [])
    return hits


def _copy(cand: Candidate) -> Candidate:
    return Candidate(doc_id=cand.doc_id, source=cand.source, leg_scores=dict(cand.leg_scores),
                     leg_ranks=dict(cand.leg_ranks), fused_score=0.0, index=cand.index, exact=cand.exact,
                     exact_by=cand.exact_by)
