"""Readers never drop a record silently: a bad line is an error item naming where and why."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from connector.indexing.documents import count_records, detect_format, read_documents
from hybridrank.errors import DataError
from ltr.evaluation.datasets import shared_datasets_dir

SCIFACT = shared_datasets_dir() / "scifact"


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz"])
def test_jsonl_malformed_line_is_an_error_item_and_others_load(tmp_path: Path, name: str) -> None:
    path = _write_jsonl(tmp_path / name, [
        json.dumps({"id": "a", "text": "first"}),
        '{"id": "b", "text": "broken',
        "",
        "[1, 2]",
        json.dumps({"id": "c", "text": "third"}),
    ])
    items = list(read_documents(path))
    assert [w for w, _, _ in items] == [f"{path}:1", f"{path}:2", f"{path}:4", f"{path}:5"]
    assert items[0][1] == {"id": "a", "text": "first"} and items[0][2] is None
    assert items[1][1] is None and "malformed JSON" in str(items[1][2]) and "Unterminated string" in str(items[1][2])
    assert items[2][1] is None and "expected a JSON object, got list" in str(items[2][2])
    assert items[3][1] == {"id": "c", "text": "third"}
    assert count_records(path) == 4


def test_csv_keeps_strings_and_reports_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('id,title,year\n1,"Hello, world",2020\n2,short\n3,,07\n', encoding="utf-8")
    items = list(read_documents(path))
    assert items[0] == (f"{path}:2", {"id": "1", "title": "Hello, world", "year": "2020"}, None)
    assert items[1][0] == f"{path}:3" and items[1][1] is None and "expected 3 columns" in str(items[1][2])
    assert items[2] == (f"{path}:4", {"id": "3", "year": "07"}, None)  # stays "07": converted only if numeric
    assert count_records(path) == 3


def test_csv_header_must_be_unique(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,id\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="unique"):
        list(read_documents(path))


def test_beir_folder_reads_the_real_corpus() -> None:
    items = list(zip(range(3), read_documents(SCIFACT), strict=False))
    first = items[0][1]
    assert first[0].endswith("corpus.jsonl.gz:1") and first[2] is None
    assert first[1] is not None and first[1]["_id"] == "4983" and first[1]["title"]


def test_beir_plain_corpus_and_missing_id(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "corpus.jsonl", [json.dumps({"_id": "1", "text": "x"}), json.dumps({"text": "y"})])
    items = list(read_documents(tmp_path, "beir"))
    assert items[0][1] == {"_id": "1", "text": "x"}
    assert items[1][1] is None and "without '_id'" in str(items[1][2])


def test_format_detection_and_errors(tmp_path: Path) -> None:
    assert detect_format("a.jsonl") == "jsonl" and detect_format("a.ndjson.gz") == "jsonl"
    assert detect_format("a.CSV") == "csv" and detect_format(tmp_path) == "beir"
    with pytest.raises(DataError, match="--format"):
        detect_format("a.txt")
    with pytest.raises(DataError, match="no such file"):
        read_documents(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="not a BEIR folder"):
        list(read_documents(tmp_path, "beir"))
