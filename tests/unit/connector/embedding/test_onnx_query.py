"""The ONNX query encoder: same vectors as torch, exported once, healed when damaged, refused when unsupported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connector.embedding.embedder import Embedder, resolve_model_path
from connector.embedding.onnx_query import OnnxQueryEncoder, _parts, fingerprint, load_or_export
from hybridrank.errors import EmbeddingError

TEXTS = ["0-dimensional biomaterials show inductive properties.", "a", "Café — naïve façade? 42 %",
         "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors. " * 20]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(query_cache_size=0, query_runtime="torch")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory, torch_embedder: Embedder) -> Path:
    cache = tmp_path_factory.mktemp("onnx")
    load_or_export(resolve_model_path("minilm"), lambda: torch_embedder.model, cache)
    return cache


def test_onnx_vectors_match_torch(export_dir: Path, torch_embedder: Embedder) -> None:
    onnx = Embedder(query_cache_size=0, onnx_dir=export_dir)
    assert onnx.active_query_runtime == "onnx"
    for text in TEXTS:
        got, want = onnx.encode_query(text), torch_embedder.encode_query(text)
        assert got.dtype == np.float32 and got.shape == want.shape == (384,)
        assert float(np.abs(got - want).max()) < 1e-5
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5


def test_thread_count_does_not_change_a_bit(export_dir: Path) -> None:
    (directory,) = [p for p in export_dir.iterdir() if p.is_dir()]
    one, two = OnnxQueryEncoder(directory, threads=1), OnnxQueryEncoder(directory, threads=2)
    for text in TEXTS:
        assert np.array_equal(one.encode(text), two.encode(text))


def test_cached_export_loads_without_the_model(export_dir: Path) -> None:
    def no_model() -> Any:
        raise AssertionError("the cached export must not load the torch model")

    encoder = load_or_export(resolve_model_path("minilm"), no_model, export_dir)
    assert encoder.encode("cached").shape == (384,)


def test_damaged_export_is_exported_again(tmp_path: Path, export_dir: Path, torch_embedder: Embedder) -> None:
    import shutil

    path = resolve_model_path("minilm")
    (source,) = [p for p in export_dir.iterdir() if p.is_dir()]
    damaged = tmp_path / fingerprint(path)
    shutil.copytree(source, damaged)
    (damaged / "model.onnx").write_bytes((damaged / "model.onnx").read_bytes()[:1000])  # truncated
    with pytest.raises(EmbeddingError, match="cannot load the ONNX query encoder"):
        OnnxQueryEncoder(damaged)
    encoder = load_or_export(path, lambda: torch_embedder.model, tmp_path)
    want = torch_embedder.encode_query(TEXTS[0])
    assert float(np.abs(encoder.encode(TEXTS[0]) - want).max()) < 1e-5


def test_fingerprint_follows_the_model_files(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"1")
    before = fingerprint(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"22")
    assert fingerprint(str(tmp_path)) != before


def test_unsupported_model_shapes_are_named() -> None:
    class Module:
        pass

    class Transformer(Module):
        pass

    class Pooling(Module):
        pooling_mode = "weightedmean"

    class Dense(Module):
        pass

    with pytest.raises(EmbeddingError, match=r"not \['Transformer', 'Pooling', 'Dense'\]"):
        _parts([Transformer(), Pooling(), Dense()])
    with pytest.raises(EmbeddingError, match="pooling 'weightedmean'"):
        _parts([Transformer(), Pooling()])


def test_unavailable_onnx_falls_back_to_torch_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           torch_embedder: Embedder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.embedding.onnx_query as onnx_query

    def broken(*_args: Any, **_kwargs: Any) -> OnnxQueryEncoder:
        raise EmbeddingError("no exporter here")

    monkeypatch.setattr(onnx_query, "load_or_export", broken)
    embedder = Embedder(query_cache_size=0, onnx_dir=tmp_path)
    embedder._model = torch_embedder.model  # share the loaded weights
    with caplog.at_level(logging.WARNING, logger="connector.embedding.embedder"):
        assert embedder.active_query_runtime == "torch"
    assert any("ONNX query encoder is unavailable" in r.getMessage() for r in caplog.records)
    assert np.array_equal(embedder.encode_query(TEXTS[0]), torch_embedder.encode_query(TEXTS[0]))


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="unknown query runtime 'tensorrt'"):
        Embedder(query_runtime="tensorrt")
