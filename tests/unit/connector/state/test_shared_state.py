"""The shared state on a fake Elasticsearch (faked at the transport): documents changed with optimistic
concurrency, experiments and the model registry agreed on by two homes, artefacts checked by checksum."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.state.artefacts import EsArtefacts, checksums
from connector.state.documents import EsDocuments, FileDocuments
from hybridrank.errors import ConfigError, ModelError
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from ltr.training.registry import ModelRegistry
from tests.support import fake_state_cluster
from tests.support.fake_state_cluster import FakeStateNode


@pytest.fixture(autouse=True)
def fresh_cluster() -> Iterator[None]:
    FakeStateNode.reset()
    yield
    FakeStateNode.reset()


def _documents() -> EsDocuments:
    return EsDocuments(fake_state_cluster.client, "state")


def _experiment(exp_id: str, index: str = "films") -> Experiment:
    return Experiment(exp_id, index, "ab", (Variant("control", "es"), Variant("treatment", "rrf")), salt="s")


def test_a_document_is_read_back_and_its_version_moves_with_each_write() -> None:
    docs = _documents()
    assert docs.read("k") is None and docs.version("k") is None
    docs.update("k", lambda d: d.update(a=1))
    first = docs.version("k")
    assert docs.read("k") == {"a": 1}
    docs.update("k", lambda d: d.update(b=2))
    assert docs.read("k") == {"a": 1, "b": 2} and docs.version("k") != first
    assert "state" in FakeStateNode.indices


def test_a_write_that_lost_the_race_runs_again_on_the_fresh_document() -> None:
    mine, theirs = _documents(), _documents()
    mine.update("counter", lambda d: d.update(n=0))
    calls: list[int] = []

    def increment(document: dict[str, Any]) -> int:
        if not calls:  # another replica writes between our read and our write
            theirs.update("counter", lambda d: d.update(n=d["n"] + 10))
        calls.append(document["n"])
        document["n"] += 1
        return int(document["n"])

    assert mine.update("counter", increment) == 11
    assert calls == [0, 10] and mine.read("counter") == {"n": 11}


def test_two_homes_share_experiments_through_the_cluster() -> None:
    here, there = ExperimentStore(_documents()), ExperimentStore(_documents())
    here.create(_experiment("e1"))
    assert there.running_for("films") == here.get("e1")
    with pytest.raises(ConfigError, match="already running"):
        there.create(_experiment("e2"))
    version = here.mtime()
    there.stop("e1")
    assert here.mtime() != version and here.running_for("films") is None
    assert here.get("e1").status == "stopped"


def test_the_file_store_keeps_the_same_document_shape(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    store = ExperimentStore(path)
    store.create(_experiment("e1"))
    assert list(json.loads(path.read_text())["experiments"]) == ["e1"]
    assert isinstance(store.documents, FileDocuments) and store.mtime() is not None


def _model(folder: Path, model_id: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "contract.json").write_text(json.dumps({"model_id": model_id}))
    (folder / "model.txt").write_text(f"trees of {model_id}\n")
    return folder


def test_a_model_promoted_in_one_home_is_fetched_whole_into_another(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ltr.training.registry.ModelContract.read", lambda path: None)
    artefacts = EsArtefacts(fake_state_cluster.client, "models")
    here = ModelRegistry(tmp_path / "a", documents=_documents(), artefacts=artefacts)
    there = ModelRegistry(tmp_path / "b", documents=_documents(), artefacts=artefacts)
    source = _model(here.model_dir("films", "m1"), "m1")
    here.promote("films", "m1")
    assert there.serving("films") == "m1"
    fetched = there.local_model("films", "m1")
    assert fetched == tmp_path / "b" / "models" / "films" / "m1" and checksums(fetched) == checksums(source)
    with pytest.raises(ModelError, match="no stored artefact"):
        there.local_model("films", "m2")


def test_a_stored_artefact_that_does_not_match_its_checksum_is_refused(tmp_path: Path) -> None:
    artefacts = EsArtefacts(fake_state_cluster.client, "models")
    artefacts.put("films", "m1", _model(tmp_path / "src", "m1"))
    stored = FakeStateNode.docs[("models", "films:m1")]["_source"]
    stored["files"][0]["data"] = base64.b64encode(b"tampered").decode()
    with pytest.raises(ModelError, match="does not match its checksum"):
        artefacts.fetch("films", "m1", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
