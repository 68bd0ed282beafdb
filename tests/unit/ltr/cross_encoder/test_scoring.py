"""Loading a cross-encoder refuses plainly; reranking reorders the window's head only."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.retrieval.candidates import Candidate
from hybridrank.errors import ModelError
from ltr.cross_encoder.scoring import load_cross_encoder, rerank_top
from tests.support.cross_encoders import LengthScorer


# -- loading -------------------------------------------------------------------------------------
def test_missing_path_is_a_plain_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=f"cross-encoder not found: {missing}"):
        load_cross_encoder(missing)


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match=f"{tmp_path} is not a cross-encoder directory: no config.json"):
        load_cross_encoder(tmp_path)


def test_corrupt_directory_is_a_plain_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(ModelError, match=f"cannot load cross-encoder '{tmp_path}'"):
        load_cross_encoder(tmp_path)


# -- reranking -----------------------------------------------------------------------------------
def test_rerank_top_reorders_the_head_only() -> None:
    window = [Candidate(d) for d in ("a", "b", "c", "d", "e")]
    texts = {"a": "x", "b": "xxx", "c": "xx", "d": "xxxxxxxx", "e": "xxxxxxxxx"}
    out = rerank_top(LengthScorer(), "q", window, texts, top_n=3)  # type: ignore[arg-type]
    assert [c.doc_id for c in out] == ["b", "c", "a", "d", "e"]


def test_rerank_top_puts_a_textless_candidate_last_in_the_head() -> None:
    window = [Candidate(d) for d in ("a", "b", "c")]
    out = rerank_top(LengthScorer(), "q", window, {"b": "x", "c": "xx"}, top_n=3)  # type: ignore[arg-type]
    assert [c.doc_id for c in out] == ["c", "b", "a"]
