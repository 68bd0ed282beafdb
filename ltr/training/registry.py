"""Where models live and which one serves: ``<home>/models/<index>/<model_id>/`` + ``registry.json``.

The registry file maps (index, variant) to the serving model id, with the previously serving ids as
a history stack for rollback. Every change is a read-modify-write under a file lock, written to a
temporary file and renamed, so a crash never leaves a half-written registry.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hybridrank.errors import ModelError
from hybridrank.files import exclusive, write_text_atomic
from ltr.training.contract import CONTRACT_FILE, ModelContract

REGISTRY_FILE = "registry.json"
DEFAULT_VARIANT = "default"
SERVING = "serving"


@dataclass(frozen=True)
class ModelEntry:
    index: str
    model_id: str
    path: Path
    contract: ModelContract | None  # None: unreadable contract (shown as broken)
    serving_variants: tuple[str, ...]
    problem: str = ""


@dataclass(frozen=True)
class RegistryChange:
    index: str
    variant: str
    previous: str | None
    current: str | None


class ModelRegistry:
    def __init__(self, home: str | Path) -> None:
        self.root = Path(home).expanduser() / "models"
        self.file = self.root / REGISTRY_FILE

    # -- model store -----------------------------------------------------------------------------
    def model_dir(self, index: str, model_id: str) -> Path:
        _check_name("index", index)
        _check_name("model id", model_id)
        return self.root / index / model_id

    def list_models(self, index: str | None = None) -> list[ModelEntry]:
        state = self._read()
        out: list[ModelEntry] = []
        if not self.root.is_dir():
            return out
        indices = [index] if index else sorted(p.name for p in self.root.iterdir() if p.is_dir())
        for idx in indices:
            folder = self.root / idx
            if not folder.is_dir():
                continue
            serving = state["serving"].get(idx, {})
            for model_path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                variants = tuple(v for v, s in serving.items() if s.get("model_id") == model_path.name)
                try:
                    contract: ModelContract | None = ModelContract.read(model_path)
                    problem = ""
                except ModelError as exc:
                    contract, problem = None, str(exc)
                out.append(ModelEntry(idx, model_path.name, model_path, contract, variants, problem))
        return out

    def resolve(self, ref: str, *, index: str | None = None, variant: str = DEFAULT_VARIANT) -> Path:
        """A model directory from a path, a model id, or ``serving`` (``serving:<variant>``)."""
        if ref == SERVING or ref.startswith(SERVING + ":"):
            if not index:
                raise ModelError("'serving' needs an index to look up")
            chosen = ref.split(":", 1)[1] if ":" in ref else variant
            model_id = self.serving(index, chosen)
            if model_id is None:
                raise ModelError(f"no model serves index {index!r} (variant {chosen!r}); "
                                 "promote one with `hybridrank models promote`")
            return self.model_dir(index, model_id)
        as_path = Path(ref).expanduser()
        if (as_path / CONTRACT_FILE).is_file():
            return as_path
        candidates = [self.root / index / ref] if index else list(self.root.glob(f"*/{ref}"))
        found = [p for p in candidates if (p / CONTRACT_FILE).is_file()]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ModelError(f"model id {ref!r} exists for several indices; pass --index")
        raise ModelError(f"no model {ref!r}: not a model directory, and not a model id under {self.root}")

    # -- serving assignments ---------------------------------------------------------------------
    def serving(self, index: str, variant: str = DEFAULT_VARIANT) -> str | None:
        slot = self._read()["serving"].get(index, {}).get(variant)
        return slot.get("model_id") if slot else None

    def assignments(self) -> dict[str, dict[str, Any]]:
        serving: dict[str, dict[str, Any]] = self._read()["serving"]
        return serving

    def promote(self, index: str, model_id: str, variant: str = DEFAULT_VARIANT) -> RegistryChange:
        """Make ``model_id`` serve (index, variant); the previous one goes on the rollback history."""
        _check_name("variant", variant)
        path = self.model_dir(index, model_id)
        ModelContract.read(path)  # refuse a directory that is not a complete model
        with self._locked() as state:
            slot = state["serving"].setdefault(index, {}).setdefault(variant, {"model_id": None, "history": []})
            previous = slot.get("model_id")
            if previous == model_id:
                return RegistryChange(index, variant, previous, model_id)
            if previous:
                slot["history"].append({"model_id": previous, "promoted_at": slot.get("promoted_at")})
            slot["model_id"] = model_id
            slot["promoted_at"] = _now()
        return RegistryChange(index, variant, previous, model_id)

    def rollback(self, index: str, variant: str = DEFAULT_VARIANT) -> RegistryChange:
        """Serve the previously serving model again; error if there is none."""
        with self._locked() as state:
            slot = state["serving"].get(index, {}).get(variant)
            if not slot or not slot.get("history"):
                raise ModelError(f"nothing to roll back to for index {index!r} variant {variant!r}: "
                                 "no earlier model served it")
            previous = slot["model_id"]
            back = slot["history"].pop()
            slot["model_id"] = back["model_id"]
            slot["promoted_at"] = _now()
        return RegistryChange(index, variant, previous, back["model_id"])

    # -- storage ---------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        if not self.file.is_file():
            return {"format_version": 1, "serving": {}}
        try:
            state = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"the model registry {self.file} is unreadable: {exc}") from exc
        if not isinstance(state, dict) or not isinstance(state.get("serving"), dict):
            raise ModelError(f"the model registry {self.file} is malformed (no 'serving' object)")
        return state

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with exclusive(self.root / ".registry.lock"):
            state = self._read()
            yield state
            write_text_atomic(self.file, json.dumps(state, indent=2, sort_keys=True) + "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_name(what: str, value: str) -> None:
    if not value or "/" in value or "\\" in value or value.startswith(".") or value in ("..",):
        raise ModelError(f"bad {what} {value!r}: no slashes, not empty, not starting with '.'")
