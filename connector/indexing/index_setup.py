"""Creating a hybridrank index, or checking that an existing one fits: mapping, analyzer, vector size.

``create_index`` builds the index from the config (``connector.indexing.mapping``) with the best
analyzer the cluster has, asked of the cluster with ``_analyze`` unless its capabilities are
given; an existing index is kept, and must hold vectors of the embedding model's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connector.client import translate_errors
from connector.indexing.mapping import AnalyzerSupport, choose_analyzer, index_body
from hybridrank.config import IndexConfig
from hybridrank.errors import EmbeddingError, HybridRankError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


@dataclass(frozen=True)
class IndexSetup:
    """What ``create_index`` did: created or reused, with which analyzer and vector size."""

    created: bool
    analyzer: str
    reason: str
    dims: int


def probe_analyzers(client: Elasticsearch) -> AnalyzerSupport:
    """Ask the cluster (``_analyze``) whether it has the english analyzer and a hunspell en_US dictionary."""
    return _ProbedAnalyzers(
        has_english_analyzer=_analyze_works(client, {"analyzer": "english", "text": "running"}),
        has_hunspell_en_us=_analyze_works(
            client, {"tokenizer": "standard", "filter": [{"type": "hunspell", "locale": "en_US"}], "text": "running"}
        ),
        has_hybridrank_plugin=_analyze_works(client, {"analyzer": "hybridrank_english", "text": "running"}),
    )


@dataclass(frozen=True)
class _ProbedAnalyzers:
    has_english_analyzer: bool
    has_hunspell_en_us: bool
    has_hybridrank_plugin: bool


def _analyze_works(client: Elasticsearch, body: dict) -> bool:
    from elasticsearch import BadRequestError

    try:
        with translate_errors():
            client.indices.analyze(**body)
    except HybridRankError as exc:
        if isinstance(exc.__cause__, BadRequestError):
            return False
        raise
    return True


def create_index(
    client: Elasticsearch,
    index: str,
    config: IndexConfig,
    *,
    dims: int,
    info: AnalyzerSupport | None = None,
    recreate: bool = False,
) -> IndexSetup:
    """Create ``index`` for ``config`` unless it exists; an existing one must have ``dims``-d vectors.

    ``info`` says which analyzers the cluster has (``connector.node.capabilities.ClusterInfo``); without
    it the cluster is probed with ``_analyze``. ``recreate`` deletes an existing index first.
    """
    with translate_errors(index):
        exists = bool(client.indices.exists(index=index))
        if exists and recreate:
            client.indices.delete(index=index)
            exists = False
        if exists:
            return _check_existing(client, index, config, dims)
        choice = choose_analyzer(config.analyzer, info if info is not None else probe_analyzers(client))
        body = index_body(config, dims=dims, analyzer=choice.name)
        client.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
        return IndexSetup(created=True, analyzer=choice.name, reason=choice.reason, dims=dims)


def _check_existing(client: Elasticsearch, index: str, config: IndexConfig, dims: int) -> IndexSetup:
    mapping = client.indices.get_mapping(index=index)
    properties = next(iter(dict(mapping).values()))["mappings"].get("properties", {})
    vector = properties.get(config.vector_field) or {}
    if vector.get("type") != "dense_vector":
        raise EmbeddingError(
            f"index [{index}] exists but has no dense_vector field {config.vector_field!r}; "
            "re-create it (--recreate) or use another index name"
        )
    if int(vector.get("dims", -1)) != dims:
        raise EmbeddingError(
            f"index [{index}] holds {vector.get('dims')}-dimensional vectors in {config.vector_field!r}, "
            f"but the embedding model gives {dims}-dimensional vectors; re-create the index (--recreate) "
            "or configure the model it was built with"
        )
    first_text = next(iter(config.text_fields))
    analyzer = str((properties.get(first_text) or {}).get("analyzer", "standard"))
    return IndexSetup(created=False, analyzer=analyzer, reason="existing index (its analyzer is kept)", dims=dims)


__all__ = ["IndexSetup", "create_index", "probe_analyzers"]
