"""Which ranker serves which (index, variant) while the endpoint runs, swapped without a restart.

``RankerHolder`` answers (index, variant) with a ranker (``ltr.ranking``). A variant is a registry
variant name or a ranker spec (``es``, ``hybrid``, ``rrf``, ``model:<id>``, ``variant:<registry variant>``) —
the same specs experiments name, so the explicit variant header and experiments share one mechanism.
It reads ``ltr.training.registry`` (imported lazily, feature-detected at startup by ``learned_holder``:
an unusable ``ltr`` serves hybrid order with the reason), checks the registry's version (the file's
mtime, or the shared document's sequence number with ``[state] store = "elasticsearch"``) at most once
per ``check_interval_s`` and swaps in the newly promoted model atomically; a request keeps the ranker
it started with. A model that cannot load gives hybrid order plus a fallback reason, never an error;
on a hot swap, a model that cannot load (corrupt, truncated, contract mismatch) is refused and the
model serving until then keeps serving (``describe()`` says what was refused and why).
``watched_files`` (the click statistics the ``ctr`` feature reads; ``watched_versions`` when they are
shared documents) are checked the same way: when
one changes, every loaded model is reloaded, so ``hybridrank clicks aggregate`` reaches serving
without a promotion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrank.config import IndexConfig, Settings
from hybridrank.errors import HybridRankError
from ltr.ranking import (
    ES_ORDER,
    HYBRID,
    MODEL_PREFIX,
    RRF,
    VARIANT_PREFIX,
    EsOrder,
    HybridOrder,
    LearnedRanker,
    Ranker,
    RrfOrder,
)

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("hybridrank.serve")
DEFAULT_VARIANT = "default"  # the registry variant a search without one is served by

# (index, model_id) -> a ranker; raises on a model that cannot load
Loader = Callable[[str, str], Ranker]
# (index, variant) -> the serving model id, or None
Resolver = Callable[[str, str], str | None]


@dataclass(frozen=True)
class _Slot:
    ranker: Ranker
    model_id: str | None
    fallback: str | None
    failed: bool = False  # the model (or the registry) could not be read: not a choice to serve hybrid


class RankerHolder:
    """The serving ranker per (index, variant), reloaded when the registry file changes."""

    def __init__(
        self,
        profiles: Mapping[str, IndexConfig],
        *,
        resolver: Resolver | None = None,
        loader: Loader | None = None,
        registry_file: Path | None = None,
        unavailable: str | None = None,
        check_interval_s: float = 1.0,
        watched_files: Sequence[Path] = (),
        registry_version: Callable[[], object] | None = None,
        watched_versions: Callable[[], tuple[object, ...]] | None = None,
    ) -> None:
        self.hybrid = HybridOrder(profiles)
        self.fixed: dict[str, Ranker] = {HYBRID: self.hybrid, ES_ORDER: EsOrder(), RRF: RrfOrder(profiles)}
        self.resolver = resolver
        self.loader = loader
        self.registry_file = registry_file
        self.registry_version = registry_version  # overrides the file's mtime
        self.watched_versions = watched_versions  # overrides the watched files' mtimes
        self.unavailable = unavailable  # why no learned ranker can ever serve (reported as fallback)
        self.check_interval_s = check_interval_s
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()
        self.watched_files = tuple(watched_files)
        self._mtime: object = None
        self._watched: tuple[object, ...] = ()
        try:
            self._mtime, self._watched = self._registry_mtime(), self._watched_mtimes()
        except HybridRankError as exc:  # the shared state does not answer yet: the first check reads it
            log.warning("registry version unreadable at start", extra={"reason": str(exc)})
        self._checked = time.monotonic()
        self.on_change: Callable[[str, str, _Slot], None] | None = None
        self.refused: dict[tuple[str, str], str] = {}  # (index, variant) -> why the last swap was refused

    # -- public ---------------------------------------------------------------------------------
    def get(self, index: str, variant: str | None) -> tuple[Ranker, str | None]:
        """(ranker, fallback reason or None). Cheap after the first call; may load a model (blocking).

        ``variant`` is a registry variant name or a ranker spec (see the module docstring).
        """
        chosen = _chosen(variant)
        if chosen in self.fixed:
            return self.fixed[chosen], None
        if self.unavailable is not None:
            return self.hybrid, self.unavailable
        if self.resolver is None or self.loader is None:
            return self.hybrid, None  # a hybrid-only endpoint, by choice
        self._maybe_reload()
        slot = self._slots.get((index, chosen))
        if slot is None:
            with self._lock:
                slot = self._slots.get((index, chosen))
                if slot is None:
                    slot = self._load(index, chosen)
                    self._slots = {**self._slots, (index, chosen): slot}
        return slot.ranker, slot.fallback

    def needs_thread(self, index: str, variant: str | None) -> bool:
        """Whether ``get`` may block (loading a model) — the caller then runs it in a worker thread."""
        chosen = _chosen(variant)
        if chosen in self.fixed or self.unavailable is not None or self.resolver is None:
            return False
        return (index, chosen) not in self._slots or self._due()

    def describe(self) -> dict[str, Any]:
        return {f"{i}/{v}": {"ranker": s.ranker.name, "model": s.model_id, "fallback": s.fallback,
                             **({"refused": self.refused[(i, v)]} if (i, v) in self.refused else {})}
                for (i, v), s in self._slots.items()}

    # -- internals ------------------------------------------------------------------------------
    def _registry_mtime(self) -> object:
        if self.registry_version is not None:
            return self.registry_version()
        return _mtime(self.registry_file) if self.registry_file is not None else None

    def _watched_mtimes(self) -> tuple[object, ...]:
        if self.watched_versions is not None:
            return self.watched_versions()
        return tuple(_mtime(path) for path in self.watched_files)

    def _due(self) -> bool:
        return time.monotonic() - self._checked >= self.check_interval_s

    def _maybe_reload(self) -> None:
        if not self._due() or not self._lock.acquire(blocking=False):
            return  # checked recently, or another request is reloading: keep serving the current slots
        try:
            self._checked = time.monotonic()
            try:
                mtime, watched = self._registry_mtime(), self._watched_mtimes()
            except HybridRankError as exc:  # the shared state's cluster does not answer: keep what serves
                log.warning("registry version unreadable; keeping the serving models", extra={"reason": str(exc)})
                return
            if mtime == self._mtime and watched == self._watched:
                return
            reload_all = watched != self._watched  # the pipelines' inputs changed: every model reloads
            self._mtime, self._watched = mtime, watched
            fresh: dict[tuple[str, str], _Slot] = {}
            for (index, variant), old in self._slots.items():
                new = self._load(index, variant, previous=None if reload_all else old)
                if new.failed and old.fallback is None:
                    # a corrupt, truncated or mismatched model is refused: the one serving keeps serving
                    self.refused[(index, variant)] = new.fallback or "unreadable"
                    log.error("model swap refused; the previous model keeps serving",
                              extra={"index": index, "variant": variant, "previous": old.model_id,
                                     "refused": new.model_id, "reason": new.fallback})
                    new = old
                else:
                    self.refused.pop((index, variant), None)
                fresh[(index, variant)] = new
                if new.model_id != old.model_id:
                    log.info("model swap", extra={"index": index, "variant": variant,
                                                  "previous": old.model_id, "current": new.model_id,
                                                  "fallback": new.fallback})
            self._slots = fresh  # one reference assignment: in-flight requests keep their ranker
        finally:
            self._lock.release()

    def _load(self, index: str, variant: str, previous: _Slot | None = None) -> _Slot:
        assert self.resolver is not None and self.loader is not None
        try:
            # ``model:<id>`` names the model itself; anything else is resolved through the registry
            if variant.startswith(MODEL_PREFIX):
                model_id: str | None = variant[len(MODEL_PREFIX):]
            else:
                model_id = self.resolver(index, variant)
        except Exception as exc:
            reason = f"registry-unreadable: {exc}"
            log.warning("fallback", extra={"index": index, "variant": variant, "reason": reason})
            return _Slot(self.hybrid, None, reason, failed=True)
        if model_id is None:
            reason = f"no-model: no model serves index [{index}] variant [{variant}]"
            return _Slot(self.hybrid, None, reason)
        if previous is not None and previous.model_id == model_id and previous.fallback is None:
            return previous
        try:
            ranker = self.loader(index, model_id)
        except Exception as exc:
            reason = f"model-load-failed: {model_id}: {exc}"
            log.warning("fallback", extra={"index": index, "variant": variant, "reason": reason})
            return _Slot(self.hybrid, model_id, reason, failed=True)
        log.info("model loaded", extra={"index": index, "variant": variant, "model": model_id})
        return _Slot(ranker, model_id, None)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None


def _chosen(variant: str | None) -> str:
    """The slot key of a variant: ``variant:<name>`` is just the registry variant ``name``."""
    chosen = variant or DEFAULT_VARIANT
    if chosen.startswith(VARIANT_PREFIX):
        chosen = chosen[len(VARIANT_PREFIX):] or DEFAULT_VARIANT
    return chosen


def learned_holder(settings: Settings, client_factory: Callable[[], Elasticsearch],
                   *, check_interval_s: float | None = None) -> RankerHolder:
    """A holder serving the registry's models; hybrid order (with the reason) if ``ltr`` is unusable."""
    profiles = settings.indices
    try:
        from features.pipeline import FeaturePipeline
        from ltr.clicks.click_model import click_stats_path, click_stats_version
        from ltr.training.model import RankingModel
        from ltr.training.registry import ModelRegistry
    except Exception as exc:  # ImportError, or a module that fails at import
        reason = f"ltr-unavailable: {type(exc).__name__}: {exc}"
        log.warning("learned ranking unavailable; serving hybrid order", extra={"reason": reason})
        return RankerHolder(profiles, unavailable=reason)
    registry = ModelRegistry.from_settings(settings)
    client_box: list[Elasticsearch] = []
    client_lock = threading.Lock()

    def client() -> Elasticsearch:
        with client_lock:
            if not client_box:
                client_box.append(client_factory())
            return client_box[0]

    def resolve(index: str, variant: str) -> str | None:
        return registry.serving(index, variant)

    def load(index: str, model_id: str) -> Ranker:
        from ltr.clicks.click_model import load_click_stats

        # click statistics as of the load; the holder reloads when the statistics change
        pipeline = FeaturePipeline.from_config(settings.index(index), click_stats=load_click_stats(settings, index))
        model = RankingModel.load(registry.local_model(index, model_id), pipeline, compile_dir=settings.compiled_dir)
        return LearnedRanker(model, pipeline, client())

    def stats_file(index: str) -> Path | None:
        try:
            return click_stats_path(settings, index)
        except HybridRankError:  # a profile name that cannot name a statistics file (e.g. ".hidden")
            return None

    usable = [index for index in profiles if stats_file(index) is not None]
    shared = settings.state.store == "elasticsearch"

    def stats_versions() -> tuple[object, ...]:
        return tuple(click_stats_version(settings, index) for index in usable)

    return RankerHolder(profiles, resolver=resolve, loader=load, registry_file=registry.file,
                        check_interval_s=settings.state.refresh_s if check_interval_s is None else check_interval_s,
                        watched_files=[p for p in map(stats_file, usable) if p is not None],
                        registry_version=registry.version if shared else None,
                        watched_versions=stats_versions if shared else None)
