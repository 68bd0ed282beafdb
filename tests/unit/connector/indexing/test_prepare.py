"""Preparing a document validates it, converts its numbers, hashes its content, and says why not."""

from __future__ import annotations

import pytest

from connector.indexing.prepare import Failure, PreparedDoc, embed_text, prepare_document
from hybridrank.config import IndexConfig

CFG = IndexConfig(numeric_fields=["year"])


def test_embed_text_joins_non_empty_fields_in_order() -> None:
    assert embed_text({"title": " T ", "text": "body"}, CFG) == "T. body"
    assert embed_text({"title": "", "text": "body"}, CFG) == "body"
    assert embed_text({"text": None}, CFG) == ""


def test_prepare_document_converts_numbers_and_hashes_content() -> None:
    ok = prepare_document("f:1", {"_id": "7", "title": "T", "text": "x", "year": " 2020 "}, CFG, model_id="m")
    assert isinstance(ok, PreparedDoc)
    assert ok.doc_id == "7" and ok.text == "T. x"
    assert ok.source == {"title": "T", "text": "x", "year": 2020.0, "doc_hash": ok.doc_hash}
    same = prepare_document("g:9", {"_id": "7", "title": "T", "text": "x", "year": 2020}, CFG, model_id="m")
    other_model = prepare_document("f:1", {"_id": "7", "title": "T", "text": "x", "year": 2020}, CFG, model_id="n")
    assert isinstance(same, PreparedDoc) and same.doc_hash == ok.doc_hash
    assert isinstance(other_model, PreparedDoc) and other_model.doc_hash != ok.doc_hash


@pytest.mark.parametrize(
    ("doc", "doc_id", "reason"),
    [
        ({"title": "T"}, None, "no document id"),
        ({"id": "  ", "title": "T"}, None, "no document id"),
        ({"id": "1", "title": "", "text": "  "}, "1", "nothing to embed"),
        ({"id": "2", "text": "x", "year": "n/a"}, "2", "numeric field 'year' has a non-numeric value 'n/a'"),
        ({"id": "3", "text": "x", "year": "nan"}, "3", "non-numeric"),
        ({"id": "4", "text": "x", "year": True}, "4", "non-numeric"),
    ],
)
def test_prepare_document_failures_name_the_reason(doc: dict, doc_id: str | None, reason: str) -> None:
    result = prepare_document("f:3", doc, CFG, model_id="m")
    assert isinstance(result, Failure)
    assert result.where == "f:3" and result.doc_id == doc_id and reason in result.reason


def test_configured_id_field() -> None:
    cfg = IndexConfig(id_field="pmid")
    result = prepare_document("f:1", {"id": "x", "pmid": 42, "text": "t"}, cfg, model_id="m")
    assert isinstance(result, PreparedDoc) and result.doc_id == "42"
    assert isinstance(prepare_document("f:1", {"id": "x", "text": "t"}, cfg, model_id="m"), Failure)
