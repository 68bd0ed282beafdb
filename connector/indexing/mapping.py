"""The index body (settings + mappings) of a hybridrank index, as a pure function of its config.

Text fields are BM25 with the config's k1/b and the chosen analyzer; the vector is a float HNSW
``dense_vector`` (explicit ``index_options``: Elasticsearch 9's default would quantize it; a config may
ask for the quantised ``int8_hnsw``/``int4_hnsw``/``bbq_hnsw`` instead); the
timestamp is a ``date``, numeric fields ``float``, keyword fields ``keyword``; ``doc_hash`` lets a
re-run skip unchanged documents; ``hybridrank_id`` (the id as a doc value, kept out of ``_source``)
lets searches name their hits without reading stored fields (``connector.retrieval.hit_ids``). Fields not
declared are kept in ``_source`` but not indexed (``dynamic: false``), so a stray field can never
make a document fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hybridrank.config import IndexConfig
from hybridrank.errors import ConfigError

SIMILARITY_NAME = "hybridrank_bm25"
HUNSPELL_ANALYZER = "english_hunspell"
HASH_FIELD = "doc_hash"
ID_FIELD = "hybridrank_id"  # the id again, as a doc value: hits name documents without a stored-field read
PLUGIN_ENGLISH = "hybridrank_english"  # the project's plugin: Lucene's EnglishAnalyzer (Porter stemming)
ANALYZER_PREFERENCE = ("english", "english_hunspell", PLUGIN_ENGLISH, "standard")


class AnalyzerSupport(Protocol):
    """What the analyzer choice needs to know about a cluster (``connector.node.capabilities.ClusterInfo``)."""

    @property
    def has_english_analyzer(self) -> bool: ...

    @property
    def has_hunspell_en_us(self) -> bool: ...

    @property
    def has_hybridrank_plugin(self) -> bool: ...


@dataclass(frozen=True)
class AnalyzerChoice:
    """The analyzer an index gets, and why (for the CLI to say)."""

    name: str
    reason: str


def _supported(name: str, info: AnalyzerSupport) -> tuple[bool, str]:
    if name == "english":
        return info.has_english_analyzer, "the cluster has analysis-common"
    if name == "english_hunspell":
        return info.has_hunspell_en_us, "the cluster has a hunspell en_US dictionary"
    if name == PLUGIN_ENGLISH:
        return info.has_hybridrank_plugin, "the cluster has the hybridrank plugin"
    return True, "built into every cluster"


_MISSING_HINT = {
    "english": "no 'english' analyzer (the analysis-common module is missing)",
    "english_hunspell": "no hunspell en_US dictionary (<es config>/hunspell/en_US/)",
    PLUGIN_ENGLISH: "no hybridrank plugin",
}


def choose_analyzer(requested: str, info: AnalyzerSupport) -> AnalyzerChoice:
    """``auto`` → the first of english > english_hunspell > hybridrank_english > standard the cluster supports.

    The plugin's ``hybridrank_english`` (Lucene's EnglishAnalyzer, Porter stemming) gives better BM25 than
    hunspell on SciFact, ArguAna and Cranfield, and a better learned ranker on Cranfield, but LightGBM on
    SciFact lost .025 on it (docs/ltr.md, issue 14), so ``auto`` keeps hunspell first; ask for it by name.

    An explicit choice the cluster cannot serve raises ``ConfigError`` saying what is missing.
    """
    if requested == "auto":
        skipped: list[str] = []
        for name in ANALYZER_PREFERENCE:
            ok, why = _supported(name, info)
            if ok:
                return AnalyzerChoice(name, f"auto: {', '.join(skipped)}" if skipped else f"auto: {why}")
            skipped.append(_MISSING_HINT[name])
        raise AssertionError("unreachable: 'standard' is always supported")
    if requested not in ANALYZER_PREFERENCE:
        raise ConfigError(f"unknown analyzer {requested!r}; expected auto, {', '.join(ANALYZER_PREFERENCE)}")
    ok, why = _supported(requested, info)
    if not ok:
        raise ConfigError(f"analyzer {requested!r} is not available: the cluster has {_MISSING_HINT[requested]}; "
                          "use --analyzer auto or standard")
    return AnalyzerChoice(requested, f"requested; {why}")


def analysis_settings(analyzer: str) -> dict:
    """The ``analysis`` settings block an analyzer needs (empty for built-in analyzers)."""
    if analyzer == HUNSPELL_ANALYZER:
        return {
            "filter": {
                "english_stop": {"type": "stop", "stopwords": "_english_"},
                "en_us_hunspell": {"type": "hunspell", "locale": "en_US", "dedup": True},
            },
            "analyzer": {
                HUNSPELL_ANALYZER: {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "english_stop", "en_us_hunspell"],
                }
            },
        }
    if analyzer in ("english", PLUGIN_ENGLISH, "standard"):
        return {}
    raise ConfigError(f"unknown analyzer {analyzer!r}; expected one of {', '.join(ANALYZER_PREFERENCE)}")


def index_body(config: IndexConfig, *, dims: int, analyzer: str) -> dict:
    """Settings and mappings for a new index of ``config`` with ``dims``-dimensional vectors."""
    if analyzer == "auto":
        raise ConfigError("resolve 'auto' with choose_analyzer() before building the index body")
    if dims < 1:
        raise ConfigError(f"vector dims must be >= 1, got {dims}")
    properties: dict[str, dict] = {}
    for name in config.text_fields:
        properties[name] = {"type": "text", "analyzer": analyzer, "similarity": SIMILARITY_NAME}
    for name in config.keyword_fields:
        properties[name] = {"type": "keyword"}
    for name in config.numeric_fields:
        properties[name] = {"type": "float"}
    if config.timestamp_field:
        properties[config.timestamp_field] = {"type": "date"}
    properties[config.vector_field] = {
        "type": "dense_vector",
        "dims": dims,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": config.vector_index_type, "m": config.hnsw_m,
                          "ef_construction": config.hnsw_ef_construction},
    }
    properties[HASH_FIELD] = {"type": "keyword", "index": False, "doc_values": False}
    properties[ID_FIELD] = {"type": "keyword", "index": False, "doc_values": True}
    _check_no_overlap(config)

    index_settings: dict = {
        "number_of_shards": config.shards,
        "number_of_replicas": config.replicas,
        "similarity": {SIMILARITY_NAME: {"type": "BM25", "k1": config.bm25_k1, "b": config.bm25_b}},
    }
    analysis = analysis_settings(analyzer)
    if analysis:
        index_settings["analysis"] = analysis
    return {
        "settings": {"index": index_settings},
        "mappings": {"dynamic": False, "_source": {"excludes": [ID_FIELD]}, "properties": properties},
    }


def _check_no_overlap(config: IndexConfig) -> None:
    roles: dict[str, str] = {}
    named = [
        *((n, "text") for n in config.text_fields),
        *((n, "keyword") for n in config.keyword_fields),
        *((n, "numeric") for n in config.numeric_fields),
        *([(config.timestamp_field, "timestamp")] if config.timestamp_field else []),
        (config.vector_field, "vector"),
        (HASH_FIELD, "internal hash"),
        (ID_FIELD, "internal id"),
    ]
    for name, role in named:
        if name in roles:
            raise ConfigError(f"field {name!r} is declared both as {roles[name]} and as {role}")
        roles[name] = role
