"""What a reranked search's legs carry so the window needs one round trip (``features.exact_scoring``).

The serving ranker's feature pipeline says which named clauses its features read; both legs carry them
as optional clauses of their post filter, and every candidate then comes back with its exact scores: the legs and the
features' inputs are one ``_msearch`` of independent searches. The pipeline scores the window with a
search of its own (the app's credentials on it, as on every request) only when the legs could not
carry them: a cluster without a vector-similarity script (neither the project's plugin nor painless),
capabilities that could not be read, or an app query or post filter with named clauses of its own (whose
``matched_queries`` the legs must not mix with ours).

The cluster's script language is asked once, with the endpoint's configured credentials (its own
work, as shipping events is: ``GET _nodes/plugins`` needs ``monitor``), on first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from anyio import to_thread

from connector.endpoint import dsl
from connector.endpoint.assignment import Assignment
from connector.endpoint.state import EndpointState
from features.exact_scoring import ExactScoring
from hybridrank.errors import ClusterUnavailable

if TYPE_CHECKING:
    from features.pipeline import FeaturePipeline

log = logging.getLogger("hybridrank.serve")
_UNKNOWN = "?"


async def vector_lang(state: EndpointState) -> str | None:
    """The upstream cluster's vector-similarity script language (``connector.node.capabilities``), asked once."""
    known = state.vector_script_lang
    if known != _UNKNOWN:
        return known
    try:
        lang = await to_thread.run_sync(_detect, state)
    except ClusterUnavailable:
        return None  # asked again on the next search
    except Exception as exc:  # never a reason to fail a search: its exact scores take a search of their own
        log.warning("cluster capabilities unreadable", extra={"reason": f"{type(exc).__name__}: {exc}"})
        lang = None
    state.vector_script_lang = lang
    log.info("exact scores ride on the legs" if lang else "exact scores take a search of their own",
             extra={"vector_script": lang})
    return lang


def _detect(state: EndpointState) -> str | None:
    from connector.node.capabilities import cluster_vector_script_lang

    return cluster_vector_script_lang(state.settings, state.upstream_url)


async def leg_scoring(state: EndpointState, plan: dsl.SearchPlan, assignment: Assignment,
                      vector: np.ndarray) -> ExactScoring | None:
    """The clauses both legs of ``plan`` carry, or None (no learned ranker serves it, or see the module)."""
    pipeline = await _serving_pipeline(state, plan, assignment)
    if pipeline is None:
        return None
    if plan.names_clauses:
        return None
    lang = await vector_lang(state)
    if lang is None:
        return None
    return pipeline.exact_scoring(plan.query_text, vector, lang)


async def _serving_pipeline(state: EndpointState, plan: dsl.SearchPlan,
                            assignment: Assignment) -> FeaturePipeline | None:
    """The feature pipeline of the learned ranker that orders this search (the first team's, interleaved)."""
    holder = state.holder
    if assignment.interleave and assignment.experiment is not None:
        variants: list[str | None] = [team.ranker for team in assignment.experiment.variants]
    else:
        variants = [plan.variant]
    for variant in variants:
        if holder.needs_thread(plan.index, variant):
            ranker, _ = await to_thread.run_sync(holder.get, plan.index, variant)
        else:
            ranker, _ = holder.get(plan.index, variant)
        pipeline: FeaturePipeline | None = getattr(ranker, "pipeline", None)
        if pipeline is not None:
            return pipeline
    return None
