"""Experiments: named ranking variants with traffic shares, sticky assignment, and the file they live in.

An experiment lives in ``<home>/experiments.json`` (written like the model registry: under a file
lock, to a temporary file, then renamed), so the CLI that creates it and the endpoint that applies
it share one source of truth; the endpoint re-reads the file when its mtime changes.

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

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hybridrank.errors import ConfigError
from hybridrank.files import exclusive, write_text_atomic
from ltr.experiments.team_draft import MAX_TEAMS

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
    """The experiments file: create, list, stop; the running experiment of an index."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

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
        with self._locked() as state:
            if experiment.id in state:
                raise ConfigError(f"experiment {experiment.id!r} already exists")
            for raw in state.values():
                if raw["status"] == RUNNING and raw["index"] == experiment.index:
                    raise ConfigError(f"experiment {raw['id']!r} is already running on index "
                                      f"{experiment.index!r}; stop it first")
            state[experiment.id] = experiment.to_json()
        return experiment

    def stop(self, experiment_id: str) -> Experiment:
        with self._locked() as state:
            raw = state.get(experiment_id)
            if raw is None:
                raise ConfigError(f"no experiment {experiment_id!r}")
            if raw["status"] == RUNNING:
                raw["status"] = STOPPED
                raw["stopped_at"] = datetime.now(UTC).isoformat()
            return Experiment.from_json(raw)

    def mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    # -- storage ----------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{self.path}: not valid JSON ({exc}); fix or remove it") from exc
        return dict(data.get("experiments", {}))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with exclusive(self.path.with_suffix(".lock")):
            state = self._read()
            yield state
            write_text_atomic(self.path, json.dumps({"experiments": state}, indent=2, sort_keys=True))
