"""Cluster capabilities for ``create_index``: a cluster with neither the english analyzer, hunspell nor the plugin."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bare:
    """Only the standard analyzer: an index made with it does not depend on the node's plugins."""

    has_english_analyzer: bool = False
    has_hunspell_en_us: bool = False
    has_hybridrank_plugin: bool = False
