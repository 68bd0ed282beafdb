"""The index body is a pure dict; the analyzer choice follows what the cluster has."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connector.indexing.mapping import analysis_settings, choose_analyzer, index_body
from hybridrank.config import IndexConfig
from hybridrank.errors import ConfigError


@dataclass(frozen=True)
class Info:
    has_english_analyzer: bool
    has_hunspell_en_us: bool
    has_hybridrank_plugin: bool = False


def test_index_body_shape() -> None:
    cfg = IndexConfig(
        text_fields={"title": 2.0, "text": 1.0}, timestamp_field="published", numeric_fields=["popularity"],
        keyword_fields=["lang"], bm25_k1=0.9, bm25_b=0.4, shards=2,
    )
    body = index_body(cfg, dims=384, analyzer="standard")
    assert body["settings"] == {
        "index": {
            "number_of_shards": 2,
            "number_of_replicas": 0,
            "similarity": {"hybridrank_bm25": {"type": "BM25", "k1": 0.9, "b": 0.4}},
        }
    }
    props = body["mappings"]["properties"]
    assert body["mappings"]["dynamic"] is False
    assert props["title"] == {"type": "text", "analyzer": "standard", "similarity": "hybridrank_bm25"}
    assert props["text"] == props["title"]
    assert props["embedding"] == {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine",
        "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100},
    }
    assert props["published"] == {"type": "date"}
    assert props["popularity"] == {"type": "float"}
    assert props["lang"] == {"type": "keyword"}
    assert props["doc_hash"]["type"] == "keyword"


def test_hunspell_analyzer_definition() -> None:
    body = index_body(IndexConfig(), dims=8, analyzer="english_hunspell")
    analysis = body["settings"]["index"]["analysis"]
    assert analysis["analyzer"]["english_hunspell"] == {
        "type": "custom", "tokenizer": "standard", "filter": ["lowercase", "english_stop", "en_us_hunspell"],
    }
    assert analysis["filter"]["english_stop"] == {"type": "stop", "stopwords": "_english_"}
    assert analysis["filter"]["en_us_hunspell"] == {"type": "hunspell", "locale": "en_US", "dedup": True}
    assert body["mappings"]["properties"]["title"]["analyzer"] == "english_hunspell"
    assert "analysis" not in index_body(IndexConfig(), dims=8, analyzer="english")["settings"]["index"]
    assert analysis_settings("standard") == {}


def test_index_body_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="choose_analyzer"):
        index_body(IndexConfig(), dims=8, analyzer="auto")
    with pytest.raises(ConfigError, match="dims"):
        index_body(IndexConfig(), dims=0, analyzer="standard")
    with pytest.raises(ConfigError, match="'title' is declared both as text and as keyword"):
        index_body(IndexConfig(keyword_fields=["title"]), dims=8, analyzer="standard")


@pytest.mark.parametrize(
    ("english", "hunspell", "expected"),
    [(True, True, "english"), (True, False, "english"), (False, True, "english_hunspell"),
     (False, False, "standard")],
)
def test_auto_prefers_english_then_hunspell_then_standard(english: bool, hunspell: bool, expected: str) -> None:
    choice = choose_analyzer("auto", Info(english, hunspell))
    assert choice.name == expected
    assert choice.reason.startswith("auto")
    if expected == "standard":
        assert "analysis-common" in choice.reason and "hunspell" in choice.reason


def test_explicit_choice_must_be_available() -> None:
    assert choose_analyzer("standard", Info(False, False)).name == "standard"
    assert choose_analyzer("english_hunspell", Info(False, True)).name == "english_hunspell"
    with pytest.raises(ConfigError, match="hunspell en_US dictionary"):
        choose_analyzer("english_hunspell", Info(True, False))
    with pytest.raises(ConfigError, match="analysis-common"):
        choose_analyzer("english", Info(False, True))


def test_auto_takes_the_plugins_english_analyzer_after_hunspell() -> None:
    assert choose_analyzer("auto", Info(False, True, True)).name == "english_hunspell"
    assert choose_analyzer("auto", Info(True, True, True)).name == "english"
    assert choose_analyzer("auto", Info(False, False, True)).name == "hybridrank_english"


def test_the_plugins_english_analyzer_needs_the_plugin() -> None:
    assert choose_analyzer("hybridrank_english", Info(False, False, True)).name == "hybridrank_english"
    with pytest.raises(ConfigError, match="hybridrank plugin"):
        choose_analyzer("hybridrank_english", Info(True, True, False))
    body = index_body(IndexConfig(), dims=8, analyzer="hybridrank_english")
    assert "analysis" not in body["settings"]["index"]  # a global analyzer of the plugin
    assert body["mappings"]["properties"]["text"]["analyzer"] == "hybridrank_english"


def test_auto_is_the_config_default() -> None:
    assert IndexConfig().analyzer == "auto"
