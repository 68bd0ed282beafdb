"""Relevance labels for training: explicit graded qrels now, click-derived labels later.

Anything that can answer ``query_ids()`` and ``labels(qid)`` (and optionally ``query_time(qid)``,
for splitting by time) is a ``JudgmentSource``; the feedback loop implements one from clicks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from hybridrank.errors import DataError


@runtime_checkable
class JudgmentSource(Protocol):
    """Graded labels per query: ``{doc_id: grade}`` (grade >= 0; 0 = judged non-relevant)."""

    def query_ids(self) -> list[str]: ...

    def labels(self, qid: str) -> dict[str, int]: ...

    def query_time(self, qid: str) -> datetime | None: ...


class Judgments:
    """Explicit graded qrels (``{qid: {doc_id: grade}}``, BEIR/TREC layouts via ``ltr.evaluation.datasets``)."""

    def __init__(self, qrels: Mapping[str, Mapping[str, int]], *, name: str = "qrels") -> None:
        cleaned: dict[str, dict[str, int]] = {}
        for qid, docs in qrels.items():
            row: dict[str, int] = {}
            for doc_id, grade in docs.items():
                if isinstance(grade, bool) or not isinstance(grade, int) or grade < 0:
                    raise DataError(f"{name}: grade of query {qid!r} doc {doc_id!r} must be an int >= 0, "
                                    f"got {grade!r}")
                row[str(doc_id)] = grade
            if row:
                cleaned[str(qid)] = row
        if not cleaned:
            raise DataError(f"{name}: the judgments are empty (no query has a judged document)")
        self.name = name
        self._qrels = cleaned

    @classmethod
    def from_collection(cls, collection_path: str, split: str) -> Judgments:
        from ltr.evaluation.datasets import load_collection

        collection = load_collection(collection_path)
        return cls(collection.qrels(split), name=f"{collection.name}:{split}")

    def query_ids(self) -> list[str]:
        return list(self._qrels)

    def labels(self, qid: str) -> dict[str, int]:
        return dict(self._qrels.get(qid, {}))

    def query_time(self, qid: str) -> datetime | None:
        return None  # explicit qrels carry no time: the validation split is by query

    def __len__(self) -> int:
        return len(self._qrels)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {q: dict(d) for q, d in self._qrels.items()}
