"""The model contract: what a model was trained on, checked against the live feature config at load.

``contract.json`` holds the ordered feature names, the missing-value policy, the feature-config hash
(and the parameters it covers, so a mismatch can be named), the training data window, library
versions, metrics, and a checksum of the model file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrank.errors import ContractMismatch, ModelError

if TYPE_CHECKING:
    from features.pipeline import FeaturePipeline

CONTRACT_FILE = "contract.json"
FORMAT_VERSION = 1
MISSING_POLICIES = {
    "native_nan": "NaN passed through; LightGBM learned which branch missing values take",
    "impute_train_median": "NaN replaced by the training median, then standardised with training mean/std",
}


#: contract keys a model directory written before they existed may lack
OPTIONAL_KEYS = ("preprocessing", "base_score", "fusion_blend", "format_version")


@dataclass
class ModelContract:
    model_id: str
    model_type: str
    model_file: str
    model_sha256: str
    feature_names: list[str]
    missing_policy: str
    feature_config_hash: str
    feature_params: list[dict[str, Any]]
    context_params: dict[str, Any]
    training: dict[str, Any]
    library_versions: dict[str, str]
    metrics: dict[str, Any]
    created_at: str
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # LightGBM boosted from a base score (``ltr.training.base_score``): {"feature", "scale"}, {} = none
    base_score: dict[str, Any] = field(default_factory=dict)
    # Scores blended with a fused feature per window (``ltr.training.fusion_blend``): {"feature", "weight"}, {} = none
    fusion_blend: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, allow_nan=False)

    @classmethod
    def read(cls, model_dir: Path) -> ModelContract:
        path = Path(model_dir) / CONTRACT_FILE
        if not path.is_file():
            raise ModelError(f"{model_dir} is not a model directory: no {CONTRACT_FILE}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path} is unreadable or truncated: {exc}") from exc
        if not isinstance(raw, dict):
            raise ModelError(f"{path}: expected a JSON object")
        if raw.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{path}: contract format {raw.get('format_version')!r} is not supported "
                             f"(this version reads {FORMAT_VERSION})")
        names = set(cls.__dataclass_fields__)
        missing = [n for n in names if n not in raw and n not in OPTIONAL_KEYS]
        if missing:
            raise ModelError(f"{path}: missing keys: {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in raw.items() if k in names})


def contract_problems(contract: ModelContract, pipeline: FeaturePipeline) -> list[str]:
    """Every difference between what the model was trained on and the live pipeline (empty = match)."""
    problems: list[str] = []
    trained, live = list(contract.feature_names), pipeline.names
    for name in trained:
        if name not in live:
            problems.append(f"feature {name!r} missing from the live config")
    for name in live:
        if name not in trained:
            problems.append(f"feature {name!r} is in the live config but the model was not trained on it")
    if not problems and trained != live:
        pos = next(i for i, (a, b) in enumerate(zip(trained, live, strict=True)) if a != b)
        problems.append(f"feature order differs at position {pos}: model has {trained[pos]!r}, "
                        f"live config has {live[pos]!r}")
    if not problems:
        live_params = {p["name"]: p for p in pipeline.feature_params()}
        for params in contract.feature_params:
            now = live_params.get(params["name"])
            if now is not None and now != params:
                problems.append(f"feature {params['name']!r} is configured differently: model "
                                f"{_params(params)}, live {_params(now)}")
        live_ctx = pipeline.context_params()
        for key in sorted(set(contract.context_params) | set(live_ctx)):
            if contract.context_params.get(key) != live_ctx.get(key):
                problems.append(f"index setting {key!r} differs: model {contract.context_params.get(key)!r}, "
                                f"live {live_ctx.get(key)!r}")
    if not problems and contract.feature_config_hash != pipeline.config_hash():
        problems.append(f"feature-config hash differs: model {contract.feature_config_hash}, "
                        f"live {pipeline.config_hash()}")
    return problems


def check_contract(contract: ModelContract, pipeline: FeaturePipeline) -> None:
    """Raise ``ContractMismatch`` naming every difference, or return if the model fits."""
    problems = contract_problems(contract, pipeline)
    if problems:
        raise ContractMismatch(f"model {contract.model_id} does not match the live feature config: "
                               + "; ".join(problems))


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "name") or "(none)"


def library_versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("hybridrank", "lightgbm", "torch", "numpy", "scikit-learn", "elasticsearch", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
