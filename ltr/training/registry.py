"""Where models live and which one serves: ``<home>/models/<index>/<model_id>/`` + the registry document.

The registry maps (index, variant) to the serving model id, with the previously serving ids as a
history stack for rollback. It is one shared document (``connector.state.documents``): the file
``<home>/models/registry.json`` (changed under a file lock, written to a temporary file and renamed,
so a crash never leaves half a registry) or, with ``[state] store = "elasticsearch"``, a document in
the cluster that every endpoint replica reads (changed with optimistic concurrency). With shared
artefacts (``connector.state.artefacts``) a promotion stores the model directory whole in the cluster,
and ``local_model`` fetches it into this machine's store, checked by checksum, before it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.state.documents import Documents, FileDocuments, Version
from hybridrank.errors import ConfigError, ModelError
from ltr.training.contract import CONTRACT_FILE, ModelContract

if TYPE_CHECKING:
    from connector.state.artefacts import EsArtefacts
    from hybridrank.config import Settings

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
    KEY = "registry"

    def __init__(self, home: str | Path, *, documents: Documents | None = None,
                 artefacts: EsArtefacts | None = None) -> None:
        self.root = Path(home).expanduser() / "models"
        self.file = self.root / REGISTRY_FILE
        self.documents: Documents = documents or FileDocuments(self.root, {self.KEY: self.file})
        self.artefacts = artefacts

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry where ``[state]`` says (files under the home, or shared in Elasticsearch)."""
        from connector.state.stores import shared_artefacts, shared_documents

        return cls(settings.home, documents=shared_documents(settings), artefacts=shared_artefacts(settings))

    def version(self) -> Version:
        """What changes whenever a serving assignment changes."""
        return self.documents.version(self.KEY)

    def local_model(self, index: str, model_id: str) -> Path:
        """The model's directory on this machine; with shared artefacts, fetched (and checksum-checked) first."""
        path = self.model_dir(index, model_id)
        if self.artefacts is not None:
            self.artefacts.fetch(index, model_id, path)
        return path

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
            return self.local_model(index, model_id)
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
        if self.artefacts is not None:
            self.artefacts.put(index, model_id, path)  # every replica can fetch it before it serves

        def switch(state: dict[str, Any]) -> RegistryChange:
            slot = _serving(state).setdefault(index, {}).setdefault(variant, {"model_id": None, "history": []})
            previous = slot.get("model_id")
            if previous == model_id:
                return RegistryChange(index, variant, previous, model_id)
            if previous:
                slot["history"].append({"model_id": previous, "promoted_at": slot.get("promoted_at")})
            slot["model_id"] = model_id
            slot["promoted_at"] = _now()
            return RegistryChange(index, variant, previous, model_id)

        return self.documents.update(self.KEY, switch)

    def rollback(self, index: str, variant: str = DEFAULT_VARIANT) -> RegistryChange:
        """Serve the previously serving model again; error if there is none."""
        def back(state: dict[str, Any]) -> RegistryChange:
            slot = _serving(state).get(index, {}).get(variant)
            if not slot or not slot.get("history"):
                raise ModelError(f"nothing to roll back to for index {index!r} variant {variant!r}: "
                                 "no earlier model served it")
            previous = slot["model_id"]
            earlier = slot["history"].pop()
            slot["model_id"] = earlier["model_id"]
            slot["promoted_at"] = _now()
            return RegistryChange(index, variant, previous, earlier["model_id"])

        return self.documents.update(self.KEY, back)

    # -- storage ---------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            state = self.documents.read(self.KEY)
        except ConfigError as exc:
            raise ModelError(f"the model registry {self._where()} is unreadable: {exc}") from exc
        if state is None:
            return {"format_version": 1, "serving": {}}
        if not isinstance(state.get("serving"), dict):
            raise ModelError(f"the model registry {self._where()} is malformed (no 'serving' object)")
        return state

    def _where(self) -> str:
        index = getattr(self.documents, "index", None)
        return f"[{index}] {self.KEY}" if index else str(self.file)


def _serving(state: dict[str, Any]) -> dict[str, Any]:
    state.setdefault("format_version", 1)
    serving: dict[str, Any] = state.setdefault("serving", {})
    if not isinstance(serving, dict):
        raise ModelError("the model registry is malformed (no 'serving' object)")
    return serving


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_name(what: str, value: str) -> None:
    if not value or "/" in value or "\\" in value or value.startswith(".") or value in ("..",):
        raise ModelError(f"bad {what} {value!r}: no slashes, not empty, not starting with '.'")
