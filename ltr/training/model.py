"""A ranking model is a directory: the model file, ``contract.json``, ``metrics.json``, ``importance.png``.

``RankingModel.load(path, pipeline)`` verifies the model file against the contract's checksum, loads
it, and checks the contract against the live feature pipeline (``ContractMismatch`` names the
difference). ``write_model_dir`` writes into a temporary sibling and renames it into place, so a
model directory is complete or absent, never half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import ModelError
from ltr.training import fusion_blend
from ltr.training.base_score import from_contract
from ltr.training.contract import CONTRACT_FILE, ModelContract, check_contract
from ltr.training.scorer import Scorer, file_sha256

if TYPE_CHECKING:
    from features.pipeline import FeaturePipeline

METRICS_FILE = "metrics.json"
IMPORTANCE_PNG = "importance.png"
LIGHTGBM_FILE = "model.txt"
LISTNET_FILE = "model.pt"


class RankingModel:
    """A loaded model: ``score(matrix)`` gives one score per row (higher = better)."""

    def __init__(self, path: Path, contract: ModelContract, scorer: Scorer) -> None:
        self.path = path
        self.contract = contract
        self._scorer = scorer
        self._base = from_contract(contract.base_score, contract.feature_names, str(path))
        self._blend = fusion_blend.from_contract(contract.fusion_blend, contract.feature_names, str(path))

    @property
    def model_id(self) -> str:
        return self.contract.model_id

    @property
    def feature_names(self) -> list[str]:
        return list(self.contract.feature_names)

    @property
    def backend(self) -> str:
        """What scores right now: ``compiled`` (native code), or the model type's own library."""
        return "compiled" if getattr(self._scorer, "compiled", False) else self.contract.model_type

    @property
    def compile_failure(self) -> str | None:
        """Why a compile of this model failed (it then scores with its own library), if it did."""
        return getattr(self._scorer, "reason", None)

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for a background compile (see ``load``); whether the compiled scorer is in use."""
        wait = getattr(self._scorer, "wait", None)
        if wait is not None:
            wait(timeout)
        return self.backend == "compiled"

    @classmethod
    def load(cls, path: str | Path, pipeline: FeaturePipeline | None = None, *,
             compile_dir: Path | None = None) -> RankingModel:
        """Load a model directory; with ``pipeline``, refuse one trained on other features.

        With ``compile_dir``, a LightGBM model scores with LightGBM at once and with its compiled
        native code (``ltr.training.compiled``, cached there) once that is built and checked, in the background.
        """
        path = Path(path).expanduser()
        if not path.is_dir():
            raise ModelError(f"no model directory at {path}")
        contract = ModelContract.read(path)
        model_file = path / contract.model_file
        if not model_file.is_file():
            raise ModelError(f"model directory {path} has no {contract.model_file}")
        if file_sha256(model_file) != contract.model_sha256:
            raise ModelError(f"{model_file} is truncated or corrupt: its checksum differs from the one "
                             f"recorded in {CONTRACT_FILE} at training time")
        if pipeline is not None:
            check_contract(contract, pipeline)
        loader = LOADERS.get(contract.model_type)
        if loader is None:
            raise ModelError(f"{path}: unknown model type {contract.model_type!r} "
                             f"(known: {', '.join(sorted(LOADERS))})")
        scorer = loader(model_file, contract)
        if compile_dir is not None and contract.model_type == "lightgbm":
            from ltr.training.compiled import CompilingScorer

            scorer = CompilingScorer(model_file, scorer, scorer.booster,  # type: ignore[attr-defined]
                                     Path(compile_dir).expanduser())
        return cls(path, contract, scorer)

    def score(self, matrix: np.ndarray, windows: Iterable[np.ndarray] | None = None) -> np.ndarray:
        """Scores (float64, one per row) for a ``rows x len(feature_names)`` matrix.

        ``windows``: the row indices of each candidate window in ``matrix``; None = one window. Only a
        model blended with fusion (``ltr.training.fusion_blend``) scores a row relative to its window."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.contract.feature_names):
            raise ModelError(f"model {self.model_id} expects {len(self.contract.feature_names)} features "
                             f"per row, got a matrix of shape {matrix.shape}")
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        scores = np.asarray(self._scorer(matrix), dtype=np.float64).reshape(-1)
        if self._base is not None:  # boosted from a base score: LightGBM's file holds only the trees
            scores = scores + self._base.margin(matrix, self.contract.feature_names)
        if self._blend is not None:
            names, blended = self.contract.feature_names, np.empty_like(scores)
            for rows in windows if windows is not None else [np.arange(len(scores))]:
                blended[rows] = self._blend.apply(scores[rows], matrix[rows], names)
            return blended
        return scores


def compile_for_serving(model_dir: Path, pipeline: FeaturePipeline | None, compile_dir: Path | None) -> str | None:
    """Load a model about to be promoted (checksum, contract) and build the compiled scorer the
    endpoint will use for it, checked against LightGBM and cached in ``compile_dir``.

    Done here, in the promoting command, the endpoint's swap finds the compiled model ready instead
    of compiling beside live traffic (the demo's SciFact model: 26 s of one core, and other threads
    stalled by up to 120 ms). A one-line account, or None when there is nothing to compile (another
    model type, or ``compile_models = false``).
    """
    started = time.perf_counter()
    model = RankingModel.load(model_dir, pipeline, compile_dir=compile_dir)
    if compile_dir is None or model.contract.model_type != "lightgbm":
        return None
    if model.wait_compiled():
        return f"compiled for the endpoint in {time.perf_counter() - started:.1f} s (cached in {compile_dir})"
    return (f"not compiled ({model.compile_failure or 'unknown reason'}): the endpoint will score this model "
            "with LightGBM's predict")


# -- backends ------------------------------------------------------------------------------------
def _load_lightgbm(model_file: Path, contract: ModelContract) -> Scorer:
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_file=str(model_file))
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{model_file} is not a readable LightGBM model: {exc}") from exc
    if booster.num_feature() != len(contract.feature_names):
        raise ModelError(f"{model_file} has {booster.num_feature()} features but its contract lists "
                         f"{len(contract.feature_names)}")

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(np.ascontiguousarray(matrix), num_threads=1))

    score.booster = booster  # type: ignore[attr-defined]
    return score


def _load_listnet(model_file: Path, contract: ModelContract) -> Scorer:
    import torch

    try:
        payload = torch.load(model_file, map_location="cpu", weights_only=True)
        weights = {k: v.detach().numpy().astype(np.float64) for k, v in payload["state_dict"].items()}
    except Exception as exc:  # torch raises RuntimeError, pickle/zip errors... on a damaged file
        raise ModelError(f"{model_file} is not a readable ListNet model: {exc}") from exc
    return listnet_scorer(weights, contract.preprocessing)


def listnet_scorer(weights: dict[str, np.ndarray], prep: dict[str, Any]) -> Scorer:
    """Numpy forward pass of the ListNet MLP (impute -> standardise -> Linear -> ReLU -> Linear)."""
    medians = np.asarray(prep["medians"], dtype=np.float64)
    means = np.asarray(prep["means"], dtype=np.float64)
    stds = np.asarray(prep["stds"], dtype=np.float64)
    w1, b1 = weights["hidden.weight"], weights["hidden.bias"]
    w2, b2 = weights["out.weight"], weights["out.bias"]

    def score(matrix: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(matrix), medians, matrix)
        x = (x - means) / stds
        h = np.maximum(x @ w1.T + b1, 0.0)
        return (h @ w2.T + b2).reshape(-1)

    return score


LOADERS: dict[str, Callable[[Path, ModelContract], Scorer]] = {
    "lightgbm": _load_lightgbm,
    "listnet": _load_listnet,
}
MODEL_FILES = {"lightgbm": LIGHTGBM_FILE, "listnet": LISTNET_FILE}


# -- writing ------------------------------------------------------------------------------------
def write_model_dir(
    final_dir: str | Path,
    contract: ModelContract,
    write_model: Callable[[Path], None],
    *,
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write a complete model directory atomically: a temp sibling, then ``os.replace``.

    ``write_model(path)`` writes the model file; its checksum goes into the contract.
    ``extras(dir)`` may add files (the importance plot).
    """
    final_dir = Path(final_dir).expanduser()
    if final_dir.exists() and any(final_dir.iterdir()):
        raise ModelError(f"{final_dir} already exists and is not empty; choose another --out")
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_dir.parent / f".tmp-{final_dir.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        model_path = tmp / contract.model_file
        write_model(model_path)
        contract.model_sha256 = file_sha256(model_path)
        (tmp / METRICS_FILE).write_text(json.dumps(contract.metrics, indent=2, allow_nan=False) + "\n")
        if extras is not None:
            extras(tmp)
        (tmp / CONTRACT_FILE).write_text(contract.to_json() + "\n", encoding="utf-8")
        for entry in tmp.iterdir():  # durable before the rename makes it visible
            with open(entry, "rb") as handle:
                os.fsync(handle.fileno())
        if final_dir.exists():
            final_dir.rmdir()  # empty (checked above)
        os.replace(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_dir
