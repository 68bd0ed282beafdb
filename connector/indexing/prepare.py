"""One document made ready to index, or the reason it cannot be: pure, no cluster and no embedder.

``prepare_document`` finds the document's id, converts its numeric fields, builds the text that is
embedded (``embed_text``) and the ``doc_hash`` (SHA-256 of its indexed content and the embedding
model) by which a re-run skips unchanged documents before embedding them. A document that does not
pass is a ``Failure`` with its ``file:line``, its id when known, and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from connector.indexing.mapping import HASH_FIELD, ID_FIELD
from hybridrank.config import IndexConfig

ID_CANDIDATES = ("_id", "id", "doc_id")
EMBED_SEPARATOR = ". "


@dataclass(frozen=True)
class Failure:
    """One document that did not load: where it came from, its id if known, and why."""

    where: str
    doc_id: str | None
    reason: str


@dataclass(frozen=True)
class PreparedDoc:
    where: str
    doc_id: str
    source: dict
    text: str
    doc_hash: str


def embed_text(doc: dict, config: IndexConfig) -> str:
    """The text that is embedded: ``embed_fields`` in order, joined with ". ", skipping empty parts."""
    parts: list[str] = []
    for name in config.embed_fields:
        value = doc.get(name)
        if value is None:
            continue
        text = (" ".join(str(v) for v in value) if isinstance(value, list) else str(value)).strip()
        if text:
            parts.append(text)
    return EMBED_SEPARATOR.join(parts)


def _doc_id(doc: dict, config: IndexConfig) -> str | None:
    """The document's id (``id_field``, else the first of ``_id``/``id``/``doc_id``), or None."""
    keys = (config.id_field,) if config.id_field else ID_CANDIDATES
    for key in keys:
        value = doc.get(key)
        if value is not None and not isinstance(value, dict | list) and str(value).strip():
            return str(value).strip()
    return None


def _to_number(value: Any) -> float | None:
    """A finite float, None for an empty value; ValueError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean")
    number = float(value.strip() if isinstance(value, str) else value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def prepare_document(where: str, doc: dict, config: IndexConfig, *, model_id: str) -> PreparedDoc | Failure:
    """Validate one document and build what is indexed, or say why it cannot be."""
    doc_id = _doc_id(doc, config)
    if doc_id is None:
        wanted = repr(config.id_field) if config.id_field else " / ".join(repr(k) for k in ID_CANDIDATES)
        return Failure(where, None, f"no document id (field {wanted} missing or empty)")
    source = {k: v for k, v in doc.items() if k not in ("_id", config.vector_field, HASH_FIELD, ID_FIELD)}
    for name in config.numeric_fields:
        if name not in source:
            continue
        try:
            number = _to_number(source[name])
        except (TypeError, ValueError):
            return Failure(where, doc_id, f"numeric field {name!r} has a non-numeric value {source[name]!r}")
        if number is None:
            del source[name]
        else:
            source[name] = number
    text = embed_text(source, config)
    if not text:
        fields = ", ".join(repr(f) for f in config.embed_fields)
        return Failure(where, doc_id, f"nothing to embed: fields {fields} are missing or empty")
    payload = json.dumps({"model": model_id, "id": doc_id, "source": source}, sort_keys=True,
                         ensure_ascii=False, default=str)
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return PreparedDoc(where, doc_id, {**source, HASH_FIELD: digest}, text, digest)


__all__ = ["Failure", "PreparedDoc", "embed_text", "prepare_document"]
