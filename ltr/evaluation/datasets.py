"""Test collections in BEIR layout: documents, queries and graded relevance judgments (qrels).

A collection is a folder::

    corpus.jsonl[.gz]     {"_id": str, "title": str, "text": str, ...} per line
    queries.jsonl[.gz]    {"_id": str, "text": str, ...} per line (may hold every split's queries)
    qrels/<split>.tsv     "query-id<TAB>corpus-id<TAB>score" (optional header), score an int

A split's queries are the query ids that appear in ``qrels/<split>.tsv``. ``load_collection`` takes
such a folder, or ``beir:<name>``, which is looked up in ``$HYBRIDRANK_DATASETS`` (folders separated
by the OS path separator) and ``<home>/datasets/<name>``, and otherwise downloaded from the public
BEIR mirror into ``<home>/datasets``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hybridrank.errors import DataError

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
DATASETS_ENV = "HYBRIDRANK_DATASETS"
DOWNLOAD_TIMEOUT_S = 10.0
_QRELS_HEADER = "query-id"


SHARED_DIR_ENV = "HYBRIDRANK_SHARED_DIR"


def shared_datasets_dir() -> Path:
    """The shared test collections: ``$HYBRIDRANK_SHARED_DIR/datasets``, else ``shared/datasets``
    beside the repository (the layout this project is developed in)."""
    root = os.environ.get(SHARED_DIR_ENV) or Path(__file__).resolve().parents[3] / "shared"
    return Path(root) / "datasets"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _first_existing(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; a bad line raises DataError naming file:line."""
    try:
        with _open_text(path) as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict) or obj.get("_id") in (None, ""):
                    raise DataError(f"{path}:{lineno}: expected a JSON object with an \"_id\"")
                obj["_id"] = str(obj["_id"])
                yield lineno, obj
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: grade}}`` from a BEIR (3 tab-separated columns, optional header) or
    TREC (``qid iter docid grade``) qrels file. Grade 0 is kept: it means judged non-relevant."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with _open_text(path) as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                if lineno == 1 and line.split("\t")[0].strip().lower() == _QRELS_HEADER:
                    continue
                parts = line.split("\t") if "\t" in line else line.split()
                if len(parts) == 4:  # TREC: qid iteration docid grade
                    parts = [parts[0], parts[2], parts[3]]
                if len(parts) != 3 or not parts[0].strip() or not parts[1].strip():
                    raise DataError(
                        f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}"
                    )
                qid, doc_id, grade_text = (p.strip() for p in parts)
                try:
                    grade = int(grade_text)
                except ValueError as exc:
                    raise DataError(f"{path}:{lineno}: score must be an integer, got {grade_text!r}") from exc
                judged = qrels.setdefault(qid, {})
                if doc_id in judged and judged[doc_id] != grade:
                    raise DataError(
                        f"{path}:{lineno}: ({qid}, {doc_id}) judged twice with different grades "
                        f"({judged[doc_id]} and {grade})"
                    )
                judged[doc_id] = grade
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return qrels


@dataclass
class Collection:
    """One test collection on disk. Queries are read at load; corpus and qrels on demand."""

    name: str
    path: Path
    queries: dict[str, str]
    corpus_path: Path
    _qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict, repr=False)

    def splits(self) -> list[str]:
        """The split names that have a qrels file, sorted."""
        qrels_dir = self.path / "qrels"
        names = {p.name.split(".")[0] for p in qrels_dir.iterdir()
                 if p.is_file() and p.name.endswith((".tsv", ".tsv.gz"))}
        return sorted(names)

    def qrels(self, split: str = "test") -> dict[str, dict[str, int]]:
        """``{query_id: {doc_id: grade}}`` of ``split``; every query id must be in ``queries``."""
        if split not in self._qrels:
            path = _first_existing(self.path / "qrels", f"{split}.tsv")
            if path is None:
                raise DataError(
                    f"collection {self.name!r} has no split {split!r} (no {self.path / 'qrels' / split}.tsv); "
                    f"splits: {', '.join(self.splits()) or 'none'}"
                )
            qrels = read_qrels(path)
            unknown = [qid for qid in qrels if qid not in self.queries]
            if unknown:
                shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
                raise DataError(
                    f"{path}: {len(unknown)} query id(s) not in queries file: {shown}"
                )
            self._qrels[split] = qrels
        return self._qrels[split]

    def split_queries(self, split: str = "test", *, limit: int | None = None) -> dict[str, str]:
        """``{query_id: text}`` of the queries judged in ``split``, in qrels file order."""
        qids = list(self.qrels(split))
        if limit is not None:
            qids = qids[: max(limit, 0)]
        return {qid: self.queries[qid] for qid in qids}

    def iter_corpus(self) -> Iterator[dict[str, Any]]:
        """Each document as its JSON object (``_id`` as str, ``title``/``text`` default to '')."""
        for _, doc in _iter_jsonl(self.corpus_path):
            doc.setdefault("title", "")
            doc.setdefault("text", "")
            yield doc


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for lineno, obj in _iter_jsonl(path):
        text = obj.get("text")
        if not isinstance(text, str):
            raise DataError(f"{path}:{lineno}: query {obj['_id']!r} has no \"text\" string")
        if obj["_id"] in queries:
            raise DataError(f"{path}:{lineno}: duplicate query id {obj['_id']!r}")
        queries[obj["_id"]] = text
    return queries


def open_folder(path: str | Path, *, name: str | None = None) -> Collection:
    """A collection from a BEIR-layout folder, with a DataError naming anything missing."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"collection folder not found: {folder}")
    corpus = _first_existing(folder, "corpus.jsonl")
    queries = _first_existing(folder, "queries.jsonl")
    qrels_dir = folder / "qrels"
    missing = [label for label, found in (
        ("corpus.jsonl[.gz]", corpus), ("queries.jsonl[.gz]", queries),
        ("qrels/<split>.tsv", qrels_dir if qrels_dir.is_dir() and any(qrels_dir.glob("*.tsv*")) else None),
    ) if found is None]
    if missing or corpus is None or queries is None:
        raise DataError(f"{folder} is not a BEIR collection folder: missing {', '.join(missing)}")
    return Collection(name=name or folder.name, path=folder, queries=_read_queries(queries), corpus_path=corpus)


def _search_dirs(home: Path | None) -> list[Path]:
    dirs = [Path(p).expanduser() for p in os.environ.get(DATASETS_ENV, "").split(os.pathsep) if p]
    if home is not None:
        dirs.append(Path(home).expanduser() / "datasets")
    return dirs


def _download_beir(name: str, target_root: Path, *, url: str, timeout_s: float) -> Path:
    """Fetch and unpack ``<name>.zip`` into ``target_root/<name>``; DataError when it cannot."""
    target_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_root, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DataError(
                f"cannot download beir:{name} (network unavailable: {exc}); pass a local BEIR folder, "
                f"e.g. ../shared/datasets/scifact"
            ) from exc
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(tmp) / "unpacked")
        except zipfile.BadZipFile as exc:
            raise DataError(f"downloaded beir:{name} from {url} is not a zip archive") from exc
        unpacked = Path(tmp) / "unpacked"
        source = unpacked / name if (unpacked / name).is_dir() else unpacked
        final = target_root / name
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(source), final)
    return final


def load_collection(
    spec: str | Path,
    *,
    home: Path | None = None,
    download_url: str = BEIR_URL,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> Collection:
    """A collection from a folder path or ``beir:<name>`` (local copies first, then the BEIR mirror).

    ``home`` is the settings' home (downloads go to ``<home>/datasets``); ``download_url`` has a
    ``{name}`` placeholder.
    """
    text = str(spec)
    if not text.startswith("beir:"):
        return open_folder(text)
    name = text.removeprefix("beir:").strip()
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"bad collection spec {text!r}: expected beir:<name>, e.g. beir:scifact")
    for directory in _search_dirs(home):
        if (directory / name).is_dir():
            return open_folder(directory / name, name=name)
    cache = (Path(home).expanduser() if home is not None else Path("~/.cache/hybridrank").expanduser()) / "datasets"
    folder = _download_beir(name, cache, url=download_url.format(name=name), timeout_s=timeout_s)
    return open_folder(folder, name=name)
