"""Collection loading: BEIR folders, validation errors that name file and line, beir:<name> lookup."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from hybridrank.errors import DataError
from ltr.evaluation.datasets import load_collection, open_folder, read_qrels, shared_datasets_dir

SHARED = shared_datasets_dir()

DOCS = [
    {"_id": "d1", "title": "Wing flutter", "text": "flutter of wings at high speed"},
    {"_id": "d2", "title": "Heat transfer", "text": "heat transfer in boundary layers"},
    {"_id": "d3", "text": "no title here"},
]
QUERIES = [{"_id": "q1", "text": "wing flutter"}, {"_id": "q2", "text": "heat"}, {"_id": "q3", "text": "other"}]


def make_beir(root: Path, *, qrels: dict[str, str] | None = None, gz: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    corpus = "".join(json.dumps(d) + "\n" for d in DOCS)
    if gz:
        with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(corpus)
    else:
        (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    files = qrels or {
        "test": "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td2\t1\n",
        "train": "query-id\tcorpus-id\tscore\nq3\td3\t1\n",
    }
    for split, text in files.items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


def test_load_folder_reads_queries_qrels_and_corpus(tmp_path: Path) -> None:
    coll = load_collection(str(make_beir(tmp_path / "toy")))
    assert coll.name == "toy"
    assert coll.queries == {"q1": "wing flutter", "q2": "heat", "q3": "other"}
    assert coll.splits() == ["test", "train"]
    assert coll.qrels("test") == {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}
    assert coll.split_queries("test") == {"q1": "wing flutter", "q2": "heat"}
    assert coll.split_queries("test", limit=1) == {"q1": "wing flutter"}
    docs = list(coll.iter_corpus())
    assert [d["_id"] for d in docs] == ["d1", "d2", "d3"]
    assert docs[2]["title"] == ""  # missing title defaults to empty
    assert coll.corpus_path.name == "corpus.jsonl.gz"


def test_plain_jsonl_corpus_is_accepted(tmp_path: Path) -> None:
    coll = open_folder(make_beir(tmp_path / "plain", gz=False))
    assert coll.corpus_path.name == "corpus.jsonl"
    assert sum(1 for _ in coll.iter_corpus()) == 3


def test_malformed_qrels_line_names_file_and_line(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "bad", qrels={"test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2 d2\n"})
    with pytest.raises(DataError, match=r"test\.tsv:3: expected 'query-id<TAB>corpus-id<TAB>score'"):
        load_collection(str(folder)).qrels("test")


def test_non_integer_grade_names_file_and_line(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "bad", qrels={"test": "q1\td1\t1\nq1\td2\thigh\n"})
    with pytest.raises(DataError, match=r"test\.tsv:2: score must be an integer, got 'high'"):
        load_collection(str(folder)).qrels("test")


def test_conflicting_duplicate_judgment_is_an_error(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "dup", qrels={"test": "q1\td1\t1\nq1\td1\t2\n"})
    with pytest.raises(DataError, match=r"test\.tsv:2: \(q1, d1\) judged twice"):
        load_collection(str(folder)).qrels("test")


def test_qrels_for_unknown_queries_are_rejected(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "unk", qrels={"test": "q1\td1\t1\nq9\td1\t1\nq8\td2\t1\n"})
    with pytest.raises(DataError, match=r"2 query id\(s\) not in queries file: q9, q8"):
        load_collection(str(folder)).qrels("test")


def test_trec_format_qrels(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\n", encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 0}}


def test_unknown_split_lists_the_available_ones(tmp_path: Path) -> None:
    coll = load_collection(str(make_beir(tmp_path / "toy")))
    with pytest.raises(DataError, match=r"no split 'dev'.*splits: test, train"):
        coll.qrels("dev")


@pytest.mark.parametrize("missing", ["corpus.jsonl.gz", "queries.jsonl", "qrels"])
def test_missing_files_are_named(tmp_path: Path, missing: str) -> None:
    folder = make_beir(tmp_path / "toy")
    target = folder / missing
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink()
    label = {"corpus.jsonl.gz": "corpus.jsonl", "queries.jsonl": "queries.jsonl", "qrels": "qrels/"}[missing]
    with pytest.raises(DataError, match=rf"not a BEIR collection folder: missing .*{label}"):
        load_collection(str(folder))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="collection folder not found"):
        load_collection(str(tmp_path / "nope"))


def test_bad_query_json_names_file_and_line(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "toy")
    with (folder / "queries.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    with pytest.raises(DataError, match=r"queries\.jsonl:4: not valid JSON"):
        load_collection(str(folder))


def test_bad_corpus_line_names_file_and_line(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "toy", gz=False)
    with (folder / "corpus.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"title": "no id"}\n')
    coll = load_collection(str(folder))
    with pytest.raises(DataError, match=r"corpus\.jsonl:4: expected a JSON object with an \"_id\""):
        list(coll.iter_corpus())


def test_beir_name_found_in_env_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_beir(tmp_path / "sets" / "toy")
    monkeypatch.setenv("HYBRIDRANK_DATASETS", f"{tmp_path / 'elsewhere'}:{tmp_path / 'sets'}")
    coll = load_collection("beir:toy", home=tmp_path / "home")
    assert coll.name == "toy" and coll.path == tmp_path / "sets" / "toy"


def test_beir_name_found_in_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_DATASETS", raising=False)
    make_beir(tmp_path / "home" / "datasets" / "toy")
    coll = load_collection("beir:toy", home=tmp_path / "home")
    assert coll.path == tmp_path / "home" / "datasets" / "toy"


def test_beir_download_refused_gives_actionable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_DATASETS", raising=False)
    # a loopback port nobody listens on: the connection is refused at once
    with pytest.raises(DataError, match=r"cannot download beir:nfcorpus \(network unavailable.*"
                                        r"pass a local BEIR folder, e.g. \.\./shared/datasets/scifact"):
        load_collection("beir:nfcorpus", home=tmp_path, download_url="http://127.0.0.1:9/{name}.zip",
                        timeout_s=2)
    assert not (tmp_path / "datasets" / "nfcorpus").exists()


def test_beir_download_unpacks_the_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_DATASETS", raising=False)
    src = make_beir(tmp_path / "src" / "toy")
    archive = tmp_path / "mirror" / "toy.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:  # BEIR zips hold one top folder named after the set
        for f in src.rglob("*"):
            if f.is_file():
                zf.write(f, f"toy/{f.relative_to(src)}")
    coll = load_collection("beir:toy", home=tmp_path / "home",
                           download_url=(tmp_path / "mirror").as_uri() + "/{name}.zip")
    assert coll.path == tmp_path / "home" / "datasets" / "toy"
    assert coll.qrels("test")["q1"] == {"d1": 2, "d2": 0}
    # a second load finds the cached copy without the mirror
    assert load_collection("beir:toy", home=tmp_path / "home", download_url="http://127.0.0.1:9/x").path == coll.path


def test_bad_beir_spec() -> None:
    with pytest.raises(DataError, match="expected beir:<name>"):
        load_collection("beir:../etc")


def test_real_cranfield() -> None:
    if not (SHARED / "cranfield").is_dir():
        pytest.fail(f"shared test collections missing: {SHARED}")
    coll = load_collection(str(SHARED / "cranfield"))
    assert coll.splits() == ["test"]
    assert len(coll.queries) == 225
    qrels = coll.qrels("test")
    assert len(qrels) == 225
    assert sum(len(d) for d in qrels.values()) == 1837
    assert {g for d in qrels.values() for g in d.values()} == {0, 1, 2, 3, 4}
    assert sum(1 for _ in coll.iter_corpus()) == 1400


def test_real_scifact_splits() -> None:
    coll = load_collection(str(SHARED / "scifact"))
    assert coll.splits() == ["test", "train"]
    assert len(coll.qrels("test")) == 300 and len(coll.qrels("train")) == 809
    assert len(coll.split_queries("test", limit=20)) == 20
