"""The films collection: genre phrases, the BEIR folder it writes, the snapshot, the datasets command."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from ltr.clicks.films import genre_phrase, load_films, write_films_dataset
from ltr.evaluation.datasets import open_folder


def test_genre_phrases_read_naturally() -> None:
    assert genre_phrase({"Comedy", "Romance"}) == "romantic comedy"
    assert genre_phrase({"Drama", "War"}) == "war drama"
    assert genre_phrase({"Horror", "Sci-Fi"}) == "science fiction horror film"
    assert genre_phrase(set()) == "film"


def test_films_writer_makes_a_beir_folder_that_loads(tmp_path: Path) -> None:
    stats = write_films_dataset(tmp_path / "films", limit=3000, seed=1)
    assert stats.documents == 3000
    assert stats.first_release.year >= 1940 and stats.last_release.year <= 2014
    collection = open_folder(tmp_path / "films")
    assert collection.splits() == ["test", "train"]
    test, train = collection.qrels("test"), collection.qrels("train")
    assert len(test) == stats.test_queries and len(train) == stats.train_queries
    assert not set(test) & set(train)
    docs = {d["_id"]: d for d in collection.iter_corpus()}
    assert len(docs) == 3000
    for qid, judged in test.items():
        query = collection.queries[qid]
        assert 5 <= len(judged) <= 400 and set(judged.values()) <= {1, 2, 3}
        for doc_id in judged:
            assert doc_id in docs  # every judged film is in the corpus
        # the query's genre words occur in the relevant films' descriptions
        text = docs[next(iter(judged))]["text"].lower()
        assert all(word in text for word in query.split() if word != "film"), (query, text)
    doc = next(iter(docs.values()))
    assert datetime.fromisoformat(doc["released"]).year == doc["year"]
    assert isinstance(doc["genres"], list) and doc["text"].startswith(doc["title"])
    # the same seed writes the same collection
    again = write_films_dataset(tmp_path / "again", limit=3000, seed=1)
    assert (tmp_path / "again" / "qrels" / "test.tsv").read_text() == (tmp_path / "films" / "qrels" / "test.tsv"
                                                                       ).read_text()
    assert again.queries == stats.queries


def test_full_snapshot_spans_1940_to_2014() -> None:
    films = load_films()
    assert len(films) > 17_000
    assert len({f.doc_id for f in films}) == len(films)
    assert min(f.released for f in films).year == 1940 and max(f.released for f in films).year == 2014


def test_datasets_films_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDRANK_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["datasets", "films", "--limit", "1500"])
    assert result.exit_code == 0, result.output
    assert "1500 films" in result.output and 'timestamp_field = "released"' in result.output
    assert open_folder(tmp_path / "datasets" / "films").qrels("test")
