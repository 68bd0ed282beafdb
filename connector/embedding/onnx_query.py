"""Query embedding on ONNX Runtime: the sentence-transformers model's own weights, exported once.

Why: one short query (~20 tokens) through torch eager takes ~22 ms on one of this machine's cores,
most of it per-operator overhead; the same graph on ONNX Runtime takes ~9 ms on one thread and ~6 ms
on two, its vectors are within 2e-7 of torch's, and they are bit-identical whatever the thread count
(torch's change in the last bits with it). Measured in ``bench/bench_endpoint.py``.

The export (``model.onnx``, the fast tokenizer as ``tokenizer.json``, ``meta.json``) is cached under
``<dir>/<fingerprint>/``; the fingerprint covers the model's files and the versions of every library
that shapes the graph, so an upgrade re-exports. A fresh export is checked against torch on probe
sentences (one past the truncation length) before anything uses it, and is published by renaming a
finished directory: a reader never sees half an export. Only models that are a transformer followed by
mean/CLS/max pooling (and optionally normalisation) export; anything else says why and stays on torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hybridrank.errors import EmbeddingError
from hybridrank.files import exclusive

EXPORT_FORMAT = 1  # bump when the export below changes
POOLINGS = ("mean", "cls", "max")
PROBES = (
    "0-dimensional biomaterials show inductive properties.",
    "what is the capital of france",
    "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors. " * 30,
)
MAX_ABS_DIFF = 1e-4  # measured: 2e-7 for all-MiniLM-L6-v2
log = logging.getLogger(__name__)


class OnnxQueryEncoder:
    """Encode one text at a time with an exported transformer, pooled and normalised as the model says."""

    def __init__(self, directory: Path, *, threads: int = 1, normalize: bool = True) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(directory / "model.onnx"), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cache: onnxruntime/tokenizers raise their own types
            raise EmbeddingError(f"cannot load the ONNX query encoder from {directory}: {exc}") from exc
        self.directory = directory
        self.pooling: str = meta["pooling"]
        self.normalize = normalize or bool(meta["normalize"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(text)
        feed = {"input_ids": np.array([encoding.ids], dtype=np.int64),
                "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0][0]
        if self.pooling == "cls":
            vector = hidden[0]
        elif self.pooling == "max":
            vector = hidden.max(axis=0)
        else:  # one unpadded sequence: every token counts
            vector = hidden.mean(axis=0)
        if self.normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return np.asarray(vector, dtype=np.float32)


def fingerprint(model_path: str) -> str:
    """Changes when the model's files or any library that shapes the exported graph changes."""
    digest = hashlib.sha256(f"format={EXPORT_FORMAT}\nmodel={model_path}\n".encode())
    for package in ("torch", "transformers", "sentence-transformers", "tokenizers", "onnx", "onnxruntime"):
        try:
            digest.update(f"{package}={metadata.version(package)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=-\n".encode())
    root = Path(model_path)
    if root.is_dir():
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def load_or_export(model_path: str, load_model: Callable[[], Any], cache_dir: Path, *,
                   threads: int = 1, normalize: bool = True) -> OnnxQueryEncoder:
    """The cached export for ``model_path`` (exporting it first if needed), ready to encode."""
    directory = cache_dir / fingerprint(model_path)
    if (directory / "meta.json").exists():
        try:
            return OnnxQueryEncoder(directory, threads=threads, normalize=normalize)
        except EmbeddingError as exc:  # a damaged cache heals by exporting again
            log.warning("re-exporting a damaged ONNX query encoder", extra={"path": str(directory), "reason": str(exc)})
            with exclusive(cache_dir / ".export.lock"):
                shutil.rmtree(directory, ignore_errors=True)
    with exclusive(cache_dir / ".export.lock"):
        if not (directory / "meta.json").exists():  # another process may have finished it meanwhile
            _export(load_model(), directory)
    return OnnxQueryEncoder(directory, threads=threads, normalize=normalize)


def _export(model: Any, directory: Path) -> None:
    import torch

    transformer, pooling, normalize = _parts(model)
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise EmbeddingError("the model's tokenizer has no fast (Rust) version to export")
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the model keeps its own
    backend.no_padding()
    backend.enable_truncation(int(model.max_seq_length))
    sample = tokenizer(["an example query"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Hidden(torch.nn.Module):
        def __init__(self, auto_model: Any) -> None:
            super().__init__()
            self.auto_model = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.auto_model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        # The tracer warns that the attention mask's shape checks become constants; they are constant for
        # one unpadded sequence, and _verify below checks a short, a long and a truncated input.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(transformer.auto_model).eval(), tuple(sample[n] for n in names),
                              str(staging / "model.onnx"), input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names}, opset_version=17,
                              dynamo=False)
        backend.save(str(staging / "tokenizer.json"))
        (staging / "meta.json").write_text(json.dumps({"pooling": pooling, "normalize": normalize,
                                                       "max_seq_length": int(model.max_seq_length)}),
                                           encoding="utf-8")
        _verify(model, OnnxQueryEncoder(staging, normalize=normalize))
        if directory.exists():  # a damaged earlier attempt (no meta.json)
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _parts(model: Any) -> tuple[Any, str, bool]:
    """(transformer module, pooling mode, normalises?) or an EmbeddingError naming what cannot export."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling" or kinds[2:] not in ([], ["Normalize"]):
        raise EmbeddingError(f"only transformer + pooling (+ normalize) models export to ONNX, not {kinds}")
    pooling_module = modules[1]
    mode = getattr(pooling_module, "pooling_mode", None)  # sentence-transformers >= 6; older: a method
    pooling = str(mode if isinstance(mode, str) else pooling_module.get_pooling_mode_str())
    if pooling not in POOLINGS:
        raise EmbeddingError(f"pooling {pooling!r} does not export to ONNX (supported: {', '.join(POOLINGS)})")
    return modules[0], pooling, kinds[2:] == ["Normalize"]


def _verify(model: Any, encoder: OnnxQueryEncoder) -> None:
    for text in PROBES:
        expected = np.asarray(model.encode([text], normalize_embeddings=encoder.normalize,
                                           convert_to_numpy=True, show_progress_bar=False)[0], dtype=np.float32)
        diff = float(np.abs(encoder.encode(text) - expected).max())
        if not diff <= MAX_ABS_DIFF:
            raise EmbeddingError(f"the ONNX export differs from the model by {diff:.2g} (limit {MAX_ABS_DIFF})")
