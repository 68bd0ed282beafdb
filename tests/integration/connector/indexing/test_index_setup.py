"""Creating an index against the real node: the dims guard on an existing index, the analyzer the cluster has."""

from __future__ import annotations

import pytest

from connector.indexing.index_setup import create_index, probe_analyzers
from connector.node.capabilities import detect
from hybridrank.config import IndexConfig
from hybridrank.errors import ConfigError, EmbeddingError
from tests.support.analyzers import Bare


def test_wrong_dims_on_existing_index_is_a_clear_error(es, fresh_index, embedder) -> None:
    create_index(es, fresh_index, IndexConfig(), dims=8, info=Bare())
    with pytest.raises(EmbeddingError, match=r"holds 8-dimensional vectors.*gives 384-dimensional"):
        create_index(es, fresh_index, IndexConfig(), dims=embedder.dimension, info=Bare())
    again = create_index(es, fresh_index, IndexConfig(), dims=384, info=Bare(), recreate=True)
    assert again.created and again.dims == 384


def test_analyzer_follows_the_cluster(es, fresh_index) -> None:
    info = detect(es)
    probed = probe_analyzers(es)  # the fallback create_index uses without info agrees with cluster_info
    assert (probed.has_english_analyzer, probed.has_hunspell_en_us, probed.has_hybridrank_plugin) == (
        info.has_english_analyzer, info.has_hunspell_en_us, info.has_hybridrank_plugin)
    cfg = IndexConfig(analyzer="english_hunspell")
    if not info.has_hunspell_en_us:  # this node lacks the dictionary: asking for it must say so
        with pytest.raises(ConfigError, match="hunspell en_US dictionary"):
            create_index(es, fresh_index, cfg, dims=8, info=info)
        auto = create_index(es, fresh_index, IndexConfig(), dims=8, info=info)
        assert auto.analyzer == ("english" if info.has_english_analyzer else
                                 "hybridrank_english" if info.has_hybridrank_plugin else "standard")
        return
    setup = create_index(es, fresh_index, cfg, dims=8, info=info)
    assert setup.analyzer == "english_hunspell"
    tokens = es.indices.analyze(index=fresh_index, analyzer="english_hunspell", text="The studies of flies")
    terms = {t["token"] for t in tokens["tokens"]}
    assert "the" not in terms and "of" not in terms and {"study", "fly"} <= terms


def test_the_plugins_english_analyzer_by_name(es, fresh_index) -> None:
    info = detect(es)
    if not info.has_hybridrank_plugin:
        pytest.fail(f"the managed node is expected to have the project's plugin: {info.describe()}")
    setup = create_index(es, fresh_index, IndexConfig(analyzer="hybridrank_english"), dims=8, info=info)
    assert setup.analyzer == "hybridrank_english"
    tokens = es.indices.analyze(index=fresh_index, field="text", text="The studies of running foxes")
    assert [t["token"] for t in tokens["tokens"]] == ["studi", "run", "fox"]
