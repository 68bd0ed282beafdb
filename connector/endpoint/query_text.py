"""The query text and the filters of an app's query DSL: what the kNN leg embeds and filters by.

Query text comes from the scoring text clauses (``match``, ``match_phrase``, ``multi_match``,
``combined_fields``, ``query_string``, ``simple_query_string``...) found under ``must``/``should`` of a
``bool`` tree (and inside ``dis_max``, ``function_score``, ``script_score``, ``boosting``); query-string
syntax is reduced to its words. ``filter`` and ``must_not`` clauses, and non-text ``must`` clauses
(which also restrict the result set), become the kNN leg's filters; clauses under ``should`` only score.
Pure: dicts in, text and dicts out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]

# Text clauses whose text is a query string: clause -> how to read it.
_FIELD_TEXT = ("match", "match_phrase", "match_phrase_prefix", "match_bool_prefix")
_QUERY_TEXT = ("multi_match", "combined_fields")
_SYNTAX_TEXT = ("query_string", "simple_query_string")

_SYNTAX_FIELD = re.compile(r"(?<![\w\\])[\w.*]+:(?=\S)")
_SYNTAX_OPS = re.compile(r"\b(AND|OR|NOT)\b|&&|\|\|")
_SYNTAX_CHARS = re.compile(r"[+\-!(){}\[\]^\"~*?\\/|]|(?<=[~^])\d+(\.\d+)?")
_SPACES = re.compile(r"\s+")


def clean_query_syntax(text: str) -> str:
    """The words of a Lucene / simple query string, without fields, operators or syntax."""
    text = _SYNTAX_FIELD.sub(" ", text)
    text = _SYNTAX_OPS.sub(" ", text)
    text = re.sub(r"[~^]\d+(\.\d+)?", " ", text)
    text = _SYNTAX_CHARS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _clauses(value: Any) -> list[Body]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _clause_text(clause: Body) -> str | None:
    """The text of one text clause, or None if it is not a text clause."""
    if len(clause) != 1:
        return None
    (kind, spec), = clause.items()
    if kind in _FIELD_TEXT and isinstance(spec, dict):
        fields = [(k, v) for k, v in spec.items() if k not in ("_name", "boost")]
        if len(fields) == 1:
            value = fields[0][1]
            text = value.get("query") if isinstance(value, dict) else value
            return str(text) if isinstance(text, str | int | float) else None
        return None
    if kind in _QUERY_TEXT and isinstance(spec, dict) and isinstance(spec.get("query"), str):
        return str(spec["query"])
    if kind in _SYNTAX_TEXT and isinstance(spec, dict) and isinstance(spec.get("query"), str):
        return clean_query_syntax(spec["query"])
    return None


@dataclass(slots=True)
class _Extraction:
    texts: list[str]
    filters: list[Body]


def _walk(clause: Body, out: _Extraction, *, conjunctive: bool) -> bool:
    """Collect text (and, where the clause must hold, filters); True if the clause held any text."""
    text = _clause_text(clause)
    if text is not None:
        if text.strip():
            out.texts.append(text.strip())
        return True
    if len(clause) != 1:
        return False
    (kind, spec), = clause.items()
    if not isinstance(spec, dict):
        return False
    if kind == "bool":
        found = False
        for sub in _clauses(spec.get("must")):
            scratch = _Extraction(texts=[], filters=[])
            if _walk(sub, scratch, conjunctive=conjunctive):
                out.texts.extend(scratch.texts)
                out.filters.extend(scratch.filters)
                found = True
            elif conjunctive:
                out.filters.append(sub)  # a non-text must clause still restricts the result set
        for sub in _clauses(spec.get("should")):
            found = _walk(sub, out, conjunctive=False) or found
        if conjunctive:
            out.filters.extend(_clauses(spec.get("filter")))
            must_not = _clauses(spec.get("must_not"))
            if must_not:
                out.filters.append({"bool": {"must_not": must_not}})
        return found
    if kind == "dis_max":
        found = False
        for sub in _clauses(spec.get("queries")):
            found = _walk(sub, out, conjunctive=False) or found
        return found
    if kind in ("function_score", "script_score") and isinstance(spec.get("query"), dict):
        return _walk(spec["query"], out, conjunctive=conjunctive)
    if kind == "boosting" and isinstance(spec.get("positive"), dict):
        return _walk(spec["positive"], out, conjunctive=conjunctive)
    if kind == "constant_score" and isinstance(spec.get("filter"), dict):
        if conjunctive:
            out.filters.append(spec["filter"])
        return False
    return False


def extract_query(query: Body | None) -> tuple[str, list[Body]]:
    """(query text, filter clauses) of an app's ``query``; text is "" if it has no text clause."""
    if not isinstance(query, dict) or not query:
        return "", []
    out = _Extraction(texts=[], filters=[])
    if not _walk(query, out, conjunctive=True) or not out.texts:
        return "", []
    return " ".join(dict.fromkeys(out.texts)), out.filters
