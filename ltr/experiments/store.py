"""Experiments: named ranking variants with traffic shares, sticky assignment, and the file they live in.

Experiments live in one shared document (``connector.state.documents``): ``<home>/experiments.json``
(written under a file lock, to a temporary file, then renamed) or, with ``[state] store =
"elasticsearch"``, a document in Elasticsearch that every endpoint replica reads. The CLI that
creates an experiment and the endpoints that apply it share that one source of truth; an endpoint
re-reads it when its version (mtime, or the document's sequence number) changes.

- ``ab`` (bucketed): a unit (user, else session, else the search itself) is assigned to a variant by
  a salted SHA-256 hash of its id — sticky, uniform, and independent between experiments.
- ``interleave`` (team draft, Radlinski et al. 2008): each search merges the variants' rankings (two:
  interleaving; more: team-draft multileaving, Schuth et al. 2014); every shown document is credited
  to the team that picked it; clicks decide win / tie / loss, per pair of variants
  (``ltr.experiments.team_draft``).

A variant's ``ranker`` is one of ``es`` (Elasticsearch's own order of the app's query), ``hybrid``
(linear fusion), ``rrf``, ``model:<model id>`` (a trained model of the index) or
``variant:<registry variant>`` (whatever the registry serves under that name).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from connector.state.documents import Documents, FileDocuments, Version
from hybridrank.errors import ConfigError
from ltr.experiments.team_draft import MAX_TEAMS

if TYPE_CHECKING:
    from hybridrank.config import Settings

Mode = Literal["ab", "interleave"]
RUNNING = "running"
STOPPED = "stopped"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RANKER = re.compile(r"^(es|hybrid|rrf|model:[A-Za-z0-9_.-]+|variant:[A-Za-z0-9_.-]+)$")  # a variant's ranker, as above


@dataclass(frozen=True)
class Variant:
    name: str
    ranker: str
    share: float = 0.5


@dataclass(frozen=True)
class Experiment:
    id: str
    index: str
    mode: Mode
    variants: tuple[Variant, ...]
    salt: str
    status: str = RUNNING
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    stopped_at: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.id):
            raise ConfigError(f"experiment id {self.id!r}: use letters, digits, '_', '.', '-' (max 64)")
        if self.mode not in ("ab", "interleave"):
            raise ConfigError(f"experiment mode must be 'ab' or 'interleave', got {self.mode!r}")
        names = [v.name for v in self.variants]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ConfigError(f"an experiment needs at least two distinctly named variants, got {names}")
        if self.mode == "interleave" and len(self.variants) > MAX_TEAMS:
            raise ConfigError(f"team-draft multileaving compares at most {MAX_TEAMS} variants")
        for v in self.variants:
            if not _NAME.match(v.name):
                raise ConfigError(f"variant name {v.name!r}: use letters, digits, '_', '.', '-'")
            if not RANKER.match(v.ranker):
                raise ConfigError(f"variant {v.name!r}: ranker {v.ranker!r} is not one of es, hybrid, rrf, "
                                  "model:<id>, variant:<name>")
            if not 0 < v.share <= 1:
                raise ConfigError(f"variant {v.name!r}: share must be in (0, 1], got {v.share}")
        if self.mode == "ab" and abs(sum(v.share for v in self.variants) - 1.0) > 1e-6:
            raise ConfigError(f"traffic shares must sum to 1, got {sum(v.share for v in self.variants):g}")

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(f"experiment {self.id!r} has no variant {name!r}")

    def assign(self, unit: str) -> Variant:
        """The variant of a unit under bucketed A/B: sticky, by salted hash."""
        point = bucket_point(self.salt, unit)
        edge = 0.0
        for v in self.variants:
            edge += v.share
            if point < edge:
                return v
        return self.variants[-1]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["variants"] = [asdict(v) for v in self.variants]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Experiment:
        return cls(**{**raw, "variants": tuple(Variant(**v) for v in raw["variants"])})


def bucket_point(salt: str, unit: str) -> float:
    """A uniform point in [0, 1) for (salt, unit)."""
    digest = hashlib.sha256(f"{salt}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class ExperimentStore:
    """The experiments document: create, list, stop; the running experiment of an index.

    ``where`` is the experiments file (a path) or the shared documents that hold them."""

    KEY = "experiments"

    def __init__(self, where: str | Path | Documents) -> None:
        if isinstance(where, str | Path):
            path = Path(where).expanduser()
            where = FileDocuments(path.parent, {self.KEY: path})
        self.documents: Documents = where

    @classmethod
    def from_settings(cls, settings: Settings) -> ExperimentStore:
        """The experiments where ``[state]`` says (a file under the home, or shared in Elasticsearch)."""
        from connector.state.stores import shared_documents

        return cls(shared_documents(settings))

    def all(self) -> list[Experiment]:
        return [Experiment.from_json(raw) for raw in self._read().values()]

    def get(self, experiment_id: str) -> Experiment:
        raw = self._read().get(experiment_id)
        if raw is None:
            raise ConfigError(f"no experiment {experiment_id!r} (see `hybridrank ab status`)")
        return Experiment.from_json(raw)

    def running_for(self, index: str) -> Experiment | None:
        for exp in self.all():
            if exp.running and exp.index == index:
                return exp
        return None

    def create(self, experiment: Experiment) -> Experiment:
        def add(document: dict[str, Any]) -> Experiment:
            state = document.setdefault(self.KEY, {})
            if experiment.id in state:
                raise ConfigError(f"experiment {experiment.id!r} already exists")
            for raw in state.values():
                if raw["status"] == RUNNING and raw["index"] == experiment.index:
                    raise ConfigError(f"experiment {raw['id']!r} is already running on index "
                                      f"{experiment.index!r}; stop it first")
            state[experiment.id] = experiment.to_json()
            return experiment

        return self.documents.update(self.KEY, add)

    def stop(self, experiment_id: str) -> Experiment:
        def stop_one(document: dict[str, Any]) -> Experiment:
            raw = document.setdefault(self.KEY, {}).get(experiment_id)
            if raw is None:
                raise ConfigError(f"no experiment {experiment_id!r}")
            if raw["status"] == RUNNING:
                raw["status"] = STOPPED
                raw["stopped_at"] = datetime.now(UTC).isoformat()
            return Experiment.from_json(raw)

        return self.documents.update(self.KEY, stop_one)

    def mtime(self) -> Version:
        """What changes whenever the experiments change (a file's mtime, a document's sequence number)."""
        return self.documents.version(self.KEY)

    def _read(self) -> dict[str, Any]:
        return dict((self.documents.read(self.KEY) or {}).get(self.KEY, {}))
