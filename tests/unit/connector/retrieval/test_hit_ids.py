"""Ids from doc values where the index has them, stored-field ids (after one resend) where it does not."""

from __future__ import annotations

from typing import Any

import pytest

from connector.indexing.mapping import ID_FIELD
from connector.retrieval import hit_ids


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hit_ids, "_slow", set())


def test_ids_only_bodies_skip_stored_fields_until_the_index_is_slow() -> None:
    body = {"query": {"match_all": {}}, "size": 5, "_source": False}
    assert hit_ids.ids_only(body, "a") == {"query": {"match_all": {}}, "size": 5,
                                          "stored_fields": "_none_", "docvalue_fields": [ID_FIELD]}
    with_source = {**body, "_source": ["timestamp"]}
    assert hit_ids.ids_only(with_source, "a") is with_source  # source wanted: stored fields are read anyway
    hit_ids.mark_slow("a")
    assert hit_ids.ids_only(body, "a") == body and hit_ids.fast("b")


def test_ids_of_reads_every_hit_by_the_same_rule_as_hit_id() -> None:
    hits: list[dict[str, Any]] = [{"_id": "x", "fields": {ID_FIELD: ["y"]}}, {"fields": {ID_FIELD: ["y"]}},
                                  {"fields": {}}, {"fields": {ID_FIELD: []}}, {"_index": "a"}, {"_id": 7}]
    assert hit_ids.ids_of(hits) == ["x", "y", None, None, None, 7]
    assert [hit_ids.hit_id(h) for h in (hits[0], hits[1], hits[5])] == ["x", "y", "7"]


def test_hit_id_reads_either_form() -> None:
    assert hit_ids.hit_id({"_id": "x", "fields": {ID_FIELD: ["y"]}}) == "x"
    assert hit_ids.hit_id({"fields": {ID_FIELD: ["y"]}}) == "y"
    with pytest.raises(KeyError, match=ID_FIELD):
        hit_ids.hit_id({"_score": 1.0})


def test_a_hit_without_an_id_resends_once_the_slow_way(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[dict[str, Any]] = []

    def search() -> list[dict[str, Any]]:
        body = hit_ids.ids_only({"_source": False}, "old")
        sent.append(body)
        hit = {"fields": {ID_FIELD: ["1"]}} if "stored_fields" in body else {"_id": "1"}
        return [{"hits": {"hits": [hit, {"_id": "2"} if "stored_fields" not in body else {"_score": 0.5}]}}]

    with caplog.at_level("WARNING", logger="connector.retrieval.hit_ids"):
        responses = hit_ids.resend_unnamed("old", search)
    assert [list(b) for b in sent] == [["stored_fields", "docvalue_fields"], ["_source"]]
    assert [hit_ids.hit_id(h) for h in responses[0]["hits"]["hits"]] == ["1", "2"]
    assert not hit_ids.fast("old") and "hybridrank index --recreate" in caplog.text
    sent.clear()
    hit_ids.resend_unnamed("old", search)  # stays slow: one search, no resend, no second warning
    assert len(sent) == 1 and caplog.text.count("without hybridrank_id") == 1


def test_an_answer_without_ids_is_resent_even_if_another_search_marked_the_index_first() -> None:
    """Two concurrent searches build fast bodies; the first marks the index slow; the second's
    answer (still without ids) must be resent too, not parsed."""
    sent: list[str] = []

    def search() -> list[dict[str, Any]]:
        first = not sent
        sent.append("fast" if first else "slow")
        if first:
            hit_ids.mark_slow("old")  # what the concurrent search did after this body was built
            return [{"hits": {"hits": [{"_score": 1.0}]}}]
        return [{"hits": {"hits": [{"_id": "1", "_score": 1.0}]}}]

    responses = hit_ids.resend_unnamed("old", search)
    assert sent == ["fast", "slow"] and hit_ids.hit_id(responses[0]["hits"]["hits"][0]) == "1"
