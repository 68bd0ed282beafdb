"""(query, document) pairs, what a cross-encoder reads: a document's text, and labelled training pairs.

``doc_text`` is the document as the cross-encoder reads it (the same for training, reranking and the
``cross_encoder`` feature); ``fetch_texts`` reads it from the index. ``build_pairs`` makes the
training pairs: the judged-relevant documents of each training query as positives, and as hard
negatives the top ``k`` documents of the query's window that are not judged relevant.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


@dataclass(frozen=True, slots=True)
class TrainingPair:
    qid: str
    doc_id: str
    label: float


def build_pairs(
    qrels: Mapping[str, Mapping[str, int]],
    windows: Mapping[str, Sequence[str]],
    *,
    hard_negatives: int = 4,
    max_pairs: int | None = None,
    seed: int = 42,
) -> list[TrainingPair]:
    """Positives (grade > 0, label grade/max grade) and the top ``hard_negatives`` window documents
    that are not judged relevant, per query. With ``max_pairs``, whole queries are kept in a seeded
    random order until the cap (a query's positives and negatives stay together); pairs are shuffled."""
    max_grade = max((g for docs in qrels.values() for g in docs.values()), default=1) or 1
    qids = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    rng = random.Random(seed)
    rng.shuffle(qids)
    pairs: list[TrainingPair] = []
    for qid in qids:
        relevant = {d: g for d, g in qrels[qid].items() if g > 0}
        group = [TrainingPair(qid, d, g / max_grade) for d, g in relevant.items()]
        negatives = [d for d in windows.get(qid, ()) if d not in relevant]
        group += [TrainingPair(qid, d, 0.0) for d in list(dict.fromkeys(negatives))[:hard_negatives]]
        if max_pairs is not None and len(pairs) + len(group) > max_pairs:
            if not pairs:
                pairs.extend(group[:max_pairs])
            break
        pairs.extend(group)
    rng.shuffle(pairs)
    return pairs


def doc_text(source: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The document as the cross-encoder reads it: the non-empty ``fields`` joined in order."""
    parts = [source.get(f) for f in fields]
    return " ".join(str(p).strip() for p in parts if p not in (None, "") and str(p).strip())


def fetch_texts(client: Elasticsearch, index: str, doc_ids: Sequence[str], fields: Sequence[str], *,
                chunk: int = 500) -> dict[str, str]:
    """doc_id -> its text (``doc_text``), one ``mget`` per ``chunk`` ids; missing documents are absent."""
    from connector.client import translate_errors

    out: dict[str, str] = {}
    ids = list(dict.fromkeys(doc_ids))
    for start in range(0, len(ids), chunk):
        with translate_errors(index):
            response = client.mget(index=index, ids=ids[start : start + chunk], source_includes=list(fields))
        for doc in response["docs"]:
            if doc.get("found"):
                out[doc["_id"]] = doc_text(doc.get("_source") or {}, fields)
    return out


__all__ = ["TrainingPair", "build_pairs", "doc_text", "fetch_texts"]
