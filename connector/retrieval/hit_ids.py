"""How search hits name their documents without a stored-field read.

Returning ``_id`` makes Elasticsearch read a stored field for every hit, and Lucene decompresses the
whole block that also holds the documents' ``_source``: measured on SciFact (one segment), an
ids-only search of 100 hits spends ~5 of its ~6 ms there, and the candidate window (two legs of 100
plus the exact-score search of ~170) pays it three times. Indices created by ``hybridrank index``
also keep each id in ``hybridrank_id`` (a keyword with doc values, left out of ``_source``); a search
with ``stored_fields: _none_`` and that doc-value field skips the stored fields entirely.

An index without the field (created by an older version, or documents an app wrote itself) shows on
the first hit that lacks it: the caller sends that search again the stored-field way, and the index
stays on that way for the life of the process (a warning says so once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connector.indexing.mapping import ID_FIELD

log = logging.getLogger(__name__)
_slow: set[str] = set()
_lock = threading.Lock()


def fast(index: str) -> bool:
    """Whether searches of ``index`` should read ids from doc values."""
    return index not in _slow


def id_params(index: str) -> dict[str, Any]:
    """Body keys that make hits carry their ids and nothing else."""
    if fast(index):
        return {"stored_fields": "_none_", "docvalue_fields": [ID_FIELD]}
    return {"_source": False}


def ids_only(body: dict[str, Any], index: str) -> dict[str, Any]:
    """``body`` asking for ids only, the cheap way where ``index`` allows (a body with source fields stays)."""
    if body.get("_source", False) is not False:
        return body
    out = {k: v for k, v in body.items() if k != "_source"}
    out.update(id_params(index))
    return out


def _id_of(hit: Mapping[str, Any]) -> Any:
    """The id ``ids_of`` reads for one hit (None if it names no document)."""
    return ids_of((hit,))[0]


def ids_of(hits: Iterable[Mapping[str, Any]]) -> list[Any]:
    """``_id``, else the doc-value id, else None, for every hit: the one rule for whether a hit names its
    document. One loop over a leg's hits: it runs for every hit of every reranked search (~200), where a
    call per hit cost more than the rule itself."""
    out: list[Any] = []
    for hit in hits:
        doc_id = hit.get("_id")
        if doc_id is None:
            fields = hit.get("fields")
            values = fields.get(ID_FIELD) if fields else None
            doc_id = values[0] if values else None
        out.append(doc_id)
    return out


def hit_id(hit: Mapping[str, Any]) -> str:
    """The hit's document id, from ``_id`` or the doc-value field; KeyError if it has neither."""
    doc_id = _id_of(hit)
    if doc_id is None:
        raise KeyError(f"hit without _id or {ID_FIELD}")
    return str(doc_id)


def all_named(index: str, responses: Iterable[Mapping[str, Any]]) -> bool:
    """True if every hit of ``responses`` has an id; else ``index`` moves to stored-field ids (resend)."""
    for response in responses:
        if None in ids_of(response.get("hits", {}).get("hits", [])):
            mark_slow(index)
            return False
    return True


def resend_unnamed(index: str, search: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``search()``'s responses; sent a second time (now the stored-field way) if a hit had no id."""
    responses = search()
    if not all_named(index, responses):  # judged on the answer: another thread may have marked it meanwhile
        responses = search()
    return responses


def mark_slow(index: str) -> None:
    with _lock:
        if index in _slow:
            return
        _slow.add(index)
    log.warning("index has documents without %s: ids are read from stored fields (slower); "
                "re-create it with `hybridrank index --recreate` to speed up retrieval", ID_FIELD,
                extra={"index": index})
