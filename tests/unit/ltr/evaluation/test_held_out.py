"""Held-out judgments for the promotion gate: read from a collection or a judgments file, and never the
queries the model was trained on."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hybridrank.config import Settings
from hybridrank.errors import DataError
from ltr.evaluation.held_out import QrelsHeldOut, without_training_queries
from ltr.training.contract import ModelContract
from ltr.training.training_queries import TRAINING_QUERIES_FILE, training_queries_of, write_training_queries
from tests.support.feature_logs import synthetic_log


def _collection(root: Path) -> Path:
    """A tiny BEIR folder: 30 queries, train = q0-q9, test = q10-q29 (q10's text repeats q0's)."""
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n"
                                                 for i in range(5)))
    texts = {f"q{i}": f"Query number {i}" for i in range(30)}
    texts["q10"] = "  query NUMBER 0 "
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in texts.items()))
    for split, qids in (("train", range(10)), ("test", range(10, 30))):
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i % 5}\t1\n" for i in qids))
    return folder


def _contract(**training: object) -> ModelContract:
    return ModelContract("m", "lightgbm", "model.txt", "", [], "native_nan", "", [], {}, dict(training), {}, {}, "")


def test_a_collection_split_or_a_judgments_file_gives_the_held_out_queries(tmp_path: Path) -> None:
    folder = _collection(tmp_path)
    settings = Settings(home=tmp_path / "home")
    judged = QrelsHeldOut(str(folder), "test").judged(settings, "tiny")
    assert (judged.collection, judged.split, len(judged.queries)) == ("tiny", "test", 20)
    assert judged.qrels["q12"] == {"d2": 1} and judged.queries["q12"] == "Query number 12"
    assert "tiny:test qrels" in judged.source
    assert len(QrelsHeldOut(str(folder), "test", limit=7).judged(settings, "tiny").queries) == 7

    mine = tmp_path / "mine.tsv"
    mine.write_text("q20 0 d1 2\nq21 0 d3 1\n")  # TREC layout
    from_file = QrelsHeldOut(str(folder), qrels_file=mine).judged(settings, "tiny")
    assert from_file.qrels == {"q20": {"d1": 2}, "q21": {"d3": 1}} and "mine.tsv" in from_file.source
    mine.write_text("q99 0 d1 2\n")
    with pytest.raises(DataError, match="not in tiny's queries file"):
        QrelsHeldOut(str(folder), qrels_file=mine).judged(settings, "tiny")


def test_the_training_queries_are_left_out_by_id_and_by_text(tmp_path: Path) -> None:
    folder = _collection(tmp_path)
    settings = Settings(home=tmp_path / "home")
    log = synthetic_log(n_queries=10, per_query=3)
    log = replace(log, qids=np.asarray([f"q{int(str(q)[1:])}" for q in log.qids], dtype=object),
                  metadata={**log.metadata, "collection": str(folder), "collection_name": "tiny", "split": "train"})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    write_training_queries(model_dir, log)
    record = training_queries_of(log)
    assert record.by == "id" and record.collection == "tiny" and record.queries == {f"q{i}" for i in range(10)}

    # gated on the split it was trained on: nothing is left to judge it on
    train = QrelsHeldOut(str(folder), "train").judged(settings, "tiny")
    kept, excluded = without_training_queries(train, model_dir, _contract())
    assert (len(kept.queries), excluded) == (0, 10)
    # on the test split: only q10, whose text is a training query's (normalised), is left out
    test = QrelsHeldOut(str(folder), "test").judged(settings, "tiny")
    kept, excluded = without_training_queries(test, model_dir, _contract())
    assert excluded == 1 and "q10" not in kept.queries and len(kept.qrels) == 19

    # a click-trained model is recorded by normalised query text
    clicks = replace(log, qids=np.asarray([f"train:query number {int(str(q)[1:]) + 20}" for q in log.qids],
                                          dtype=object), metadata={**log.metadata, "collection": "events"})
    write_training_queries(model_dir, clicks)
    kept, excluded = without_training_queries(test, model_dir, _contract())
    assert excluded == 10 and set(kept.queries) == {f"q{i}" for i in range(10, 20)}


def test_a_model_without_a_record_is_judged_by_its_contract(tmp_path: Path) -> None:
    folder = _collection(tmp_path)
    settings = Settings(home=tmp_path / "home")
    model_dir = tmp_path / "old-model"
    model_dir.mkdir()
    assert not (model_dir / TRAINING_QUERIES_FILE).exists()
    train = QrelsHeldOut(str(folder), "train").judged(settings, "tiny")
    test = QrelsHeldOut(str(folder), "test").judged(settings, "tiny")
    trained_here = _contract(collection=str(folder), split="train")
    assert without_training_queries(train, model_dir, trained_here)[1] == 10
    assert without_training_queries(test, model_dir, trained_here)[1] == 0
    assert without_training_queries(train, model_dir, _contract(collection="other", split="train"))[1] == 0
