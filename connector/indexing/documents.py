"""Document readers that never drop a record silently.

Every reader yields ``(where, doc, error)`` triples: ``where`` is ``"file:line"``, and exactly one of
``doc`` (a dict) and ``error`` (a reason a person can act on) is set. A malformed line becomes an
error item; the lines around it still load. Values are passed through as read: CSV cells stay strings
(numeric fields are converted by ``connector.indexing.prepare``, which knows the config).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from hybridrank.errors import DataError

DocItem = tuple[str, dict | None, str | None]
FORMATS = ("auto", "jsonl", "csv", "beir")
BEIR_CORPUS_NAMES = ("corpus.jsonl.gz", "corpus.jsonl")


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_jsonl(path: str | Path) -> Iterator[DocItem]:
    """One JSON object per line (plain or ``.gz``); blank lines are ignored."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                where = f"{path}:{lineno}"
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    yield where, None, f"malformed JSON: {exc.msg} (column {exc.colno})"
                    continue
                if not isinstance(obj, dict):
                    yield where, None, f"expected a JSON object, got {type(obj).__name__}"
                    continue
                yield where, obj, None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def read_csv(path: str | Path) -> Iterator[DocItem]:
    """A header row, then one document per row; every value stays a string (empty cells are dropped)."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            names = [h.strip() for h in header]
            if any(not n for n in names) or len(set(names)) != len(names):
                raise DataError(f"{path}:1: the header needs unique, non-empty column names, got {header}")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(names):
                    yield where, None, f"expected {len(names)} columns (as in the header), got {len(row)}"
                    continue
                yield where, {k: v for k, v in zip(names, row, strict=True) if v != ""}, None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def beir_corpus_path(folder: str | Path) -> Path:
    """The corpus file of a BEIR folder (``corpus.jsonl.gz`` preferred)."""
    folder = Path(folder)
    for name in BEIR_CORPUS_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: not a BEIR folder (no {' or '.join(BEIR_CORPUS_NAMES)})")


def read_beir(folder: str | Path) -> Iterator[DocItem]:
    """The corpus of a BEIR folder; its ``_id`` is the document id."""
    for where, doc, error in read_jsonl(beir_corpus_path(folder)):
        if doc is not None and "_id" not in doc:
            yield where, None, "BEIR document without '_id'"
            continue
        yield where, doc, error


READERS: dict[str, Callable[[Path], Iterator[DocItem]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "beir": read_beir,
}


def detect_format(path: str | Path) -> str:
    """``beir`` for a folder, else from the extension (``.jsonl``/``.json``/``.ndjson``, ``.csv``, ``+.gz``)."""
    path = Path(path)
    if path.is_dir():
        return "beir"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    raise DataError(f"{path}: cannot tell the format from the name; pass --format jsonl|csv|beir")


def read_documents(path: str | Path, fmt: str = "auto") -> Iterator[DocItem]:
    """Read ``path`` in ``fmt`` (``auto`` = from the extension, or ``beir`` for a folder)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    chosen = detect_format(path) if fmt == "auto" else fmt
    if chosen != "beir" and path.is_dir():
        raise DataError(f"{path}: is a folder; only --format beir reads a folder")
    return READERS[chosen](path)


def count_records(path: str | Path, fmt: str = "auto") -> int:
    """Non-blank records in ``path`` (for a progress bar; a CSV cell spanning lines counts extra)."""
    path = Path(path)
    chosen = detect_format(path) if fmt == "auto" else fmt
    target = beir_corpus_path(path) if chosen == "beir" else path
    with _open_text(target) as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0) if chosen == "csv" else lines
