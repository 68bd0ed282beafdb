"""What a cluster can do: its version, modules and plugins, and whether hunspell en_US stemming works.

A bare integ-test-zip node has no ``analysis-common`` (no English analyzer) and no ``rank-rrf``
(no RRF retriever); the official image has both. Callers ask here and pick what the cluster has.
Versions, modules and plugins are those every node shares (a feature is usable only if all have it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.client import translate_errors
from hybridrank.errors import ClusterError, ClusterUnavailable

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from hybridrank.config import Settings

log = logging.getLogger(__name__)

ANALYSIS_COMMON = "analysis-common"
RANK_RRF = "rank-rrf"
LANG_PAINLESS = "lang-painless"
HYBRIDRANK_PLUGIN = "hybridrank"  # the project's own (connector.node.plugin), named in its descriptor
HUNSPELL_PROBE_TEXT = "studies"
HUNSPELL_PROBE_STEM = "study"


def parse_version(text: str) -> tuple[int, int, int]:
    """``"9.2.4"`` → ``(9, 2, 4)``; suffixes such as ``-SNAPSHOT`` are ignored, missing parts are 0."""
    parts = [int(p) if p.isdigit() else 0 for p in text.split("-", 1)[0].split(".")[:3]]
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return major, minor, patch


def hunspell_probe_body(locale: str = "en_US") -> dict[str, Any]:
    """An ``_analyze`` body that stems one word with the hunspell filter of ``locale``."""
    return {
        "tokenizer": "standard",
        "filter": ["lowercase", {"type": "hunspell", "locale": locale, "dedup": True}],
        "text": HUNSPELL_PROBE_TEXT,
    }


@dataclass
class ClusterInfo:
    """A cluster's capabilities. ``has_hunspell_en_us`` asks the cluster once, then remembers."""

    version: str
    modules: frozenset[str]
    plugins: frozenset[str]
    client: Elasticsearch | None = field(default=None, repr=False, compare=False)
    _hunspell: bool | None = field(default=None, repr=False, compare=False)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    @property
    def has_english_analyzer(self) -> bool:
        """The built-in ``english`` analyzer (and other language analyzers) come with analysis-common."""
        return ANALYSIS_COMMON in self.modules

    @property
    def has_rrf_retriever(self) -> bool:
        """The ``rrf`` retriever comes with the rank-rrf module."""
        return RANK_RRF in self.modules

    @property
    def has_hybridrank_plugin(self) -> bool:
        """The project's own plugin (``connector.node.plugin``): ``GET /``, the ``hybridrank`` score script
        (exact vector similarity) and the ``hybridrank_*`` English stemming filters."""
        return HYBRIDRANK_PLUGIN in self.plugins

    @property
    def vector_script_lang(self) -> str | None:
        """The script language that scores exact vector similarity inside a query: ``hybridrank`` (the
        project's plugin, ``vector_similarity``), ``painless`` (``cosineSimilarity``, stock clusters), or
        None (neither: the features' exact scores then need a search of their own)."""
        if self.has_hybridrank_plugin:
            return HYBRIDRANK_PLUGIN
        if LANG_PAINLESS in self.modules:
            return "painless"
        return None

    @property
    def has_hunspell_en_us(self) -> bool:
        """True if a hunspell ``en_US`` filter stems on this cluster (its nodes have the dictionary)."""
        if self._hunspell is None:
            self._hunspell = self._probe_hunspell()
        return self._hunspell

    def _probe_hunspell(self) -> bool:
        if self.client is None:
            return False
        try:
            with translate_errors():
                response = self.client.indices.analyze(body=hunspell_probe_body())
        except ClusterUnavailable:
            raise
        except ClusterError as exc:  # 400 "failed to load hunspell dictionary for locale: en_US"
            log.info("no hunspell en_US dictionary on the cluster: %s", exc)
            return False
        tokens = [t.get("token") for t in response.body.get("tokens", [])]
        return HUNSPELL_PROBE_STEM in tokens

    def describe(self) -> str:
        """One line: version and the optional capabilities, for CLI output and logs."""

        def yes(flag: bool) -> str:
            return "yes" if flag else "no"

        return (
            f"Elasticsearch {self.version}; english analyzer: {yes(self.has_english_analyzer)}, "
            f"rrf retriever: {yes(self.has_rrf_retriever)}, hunspell en_US: {yes(self.has_hunspell_en_us)}, "
            f"hybridrank plugin: {yes(self.has_hybridrank_plugin)}, "
            f"vector script: {self.vector_script_lang or 'none'}"
        )


def detect(client: Elasticsearch) -> ClusterInfo:
    """Ask the cluster (``GET _nodes/plugins``; ``GET /`` may be missing) what every node has."""
    with translate_errors():
        response = client.nodes.info(metric="plugins")
    nodes = list(response.body.get("nodes", {}).values())
    if not nodes:
        raise ClusterError("the cluster reported no nodes", status=503, error_type="cluster_unavailable")
    versions = sorted((str(n.get("version", "0")) for n in nodes), key=parse_version)
    modules = frozenset.intersection(*(frozenset(m["name"] for m in n.get("modules", [])) for n in nodes))
    plugins = frozenset.intersection(*(frozenset(p["name"] for p in n.get("plugins", [])) for n in nodes))
    return ClusterInfo(version=versions[0], modules=modules, plugins=plugins, client=client)


def detect_vector_script_lang(client: Elasticsearch) -> str | None:
    """``ClusterInfo.vector_script_lang`` of the cluster, or None if it cannot be asked (no ``monitor``
    privilege, say): callers then score exactly with a search of their own, which any cluster can."""
    try:
        return detect(client).vector_script_lang
    except ClusterUnavailable:
        raise
    except ClusterError as exc:
        log.info("cluster capabilities unknown (%s): exact scores take a search of their own", exc)
        return None


def cluster_vector_script_lang(settings: Settings, url: str) -> str | None:
    """``detect_vector_script_lang`` of the cluster at ``url``, asked with the configured credentials: the
    endpoint's own work (``GET _nodes/plugins`` needs ``monitor``), never on an app's behalf."""
    from connector.client import make_client

    client = make_client(settings, url=url)
    try:
        return detect_vector_script_lang(client)
    finally:
        client.close()
