"""Where shared state lives: one JSON document per key, read whole and changed by read-modify-write.

Experiments (``experiments``), the model registry's serving assignments (``registry``) and click
statistics (``clicks/<index>``) are each one document. Two stores keep them:

- ``FileDocuments``: a JSON file per key under the home (written atomically, changed under a file lock).
  One machine only: the CLI and one endpoint process on it share it.
- ``EsDocuments``: a document per key in one Elasticsearch index, changed with optimistic
  concurrency (``if_seq_no``/``if_primary_term``, retried on a conflict), so any number of endpoint
  replicas and CLIs on any machine agree. ``version`` is the document's sequence number: a replica
  polls it (a realtime GET, no refresh needed) and re-reads only when it moved.

``version`` is what a reader compares to notice a change (a file's mtime, a document's seq_no);
None means the document does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from connector.state.lazy_index import LazyIndex
from hybridrank.errors import ClusterError, ConfigError
from hybridrank.files import exclusive, write_text_atomic

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

Version = tuple[int, ...] | float | None
STATE_MAPPING: dict[str, Any] = {"dynamic": False, "properties": {
    "state": {"type": "object", "enabled": False}, "key": {"type": "keyword"}}}
_CONFLICT_RETRIES = 20
T = TypeVar("T")


class Documents(Protocol):
    """Named JSON documents with atomic read-modify-write."""

    def read(self, key: str) -> dict[str, Any] | None: ...

    def version(self, key: str) -> Version: ...

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T: ...


class FileDocuments:
    """Each key is a JSON file (``paths`` maps a key to it; other keys go to ``<root>/<key>.json``)."""

    local = True  # reading it is a stat and a file read: cheap enough for the request path

    def __init__(self, root: Path, paths: dict[str, Path] | None = None) -> None:
        self.root = Path(root).expanduser()
        self.paths = dict(paths or {})

    def path(self, key: str) -> Path:
        return self.paths.get(key) or self.root / f"{key}.json"

    def read(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); fix or remove it") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return data

    def version(self, key: str) -> Version:
        try:
            return self.path(key).stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T:
        """``change`` the document in place under the file lock; written back unless it raises."""
        path = self.path(key)
        with exclusive(path.parent / f".{path.name}.lock"):
            state = self.read(key) or {}
            result = change(state)
            write_text_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")
        return result


class EsDocuments:
    """Each key is a document of ``index`` (created on first use: one shard, a copy on every node)."""

    local = False

    def __init__(self, client_factory: Callable[[], Elasticsearch], index: str) -> None:
        self.index = index
        self._es = LazyIndex(client_factory, index, STATE_MAPPING)

    def read(self, key: str) -> dict[str, Any] | None:
        found = self._get(key)
        return None if found is None else dict(found["_source"].get("state") or {})

    def version(self, key: str) -> Version:
        found = self._get(key, source=False)
        return None if found is None else (int(found["_primary_term"]), int(found["_seq_no"]))

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T:
        """``change`` the document in place; written back only if nobody wrote it meanwhile, else ``change``
        runs again on the fresh document (so it must only change the dict it is given)."""
        for _ in range(_CONFLICT_RETRIES):
            found = self._get(key)
            state = dict(found["_source"].get("state") or {}) if found else {}
            result = change(state)
            if self._write(key, {"key": key, "state": state}, found) != 409:
                return result
        raise ClusterError(f"the shared state document [{key}] kept changing under us; try again", status=409)

    # -- Elasticsearch ----------------------------------------------------------------------------
    def _write(self, key: str, body: dict[str, Any], found: dict[str, Any] | None) -> int:
        """Create the document, or overwrite the version ``found``; the HTTP status (409: lost the race)."""
        if found is None:
            response = self._call(lambda c: c.options(ignore_status=409).create(
                index=self.index, id=key, document=body, refresh=True))
        else:
            response = self._call(lambda c: c.options(ignore_status=409).index(
                index=self.index, id=key, document=body, refresh=True,
                if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"]))
        return int(response.meta.status)

    def _get(self, key: str, *, source: bool = True) -> dict[str, Any] | None:
        response = self._call(lambda c: c.options(ignore_status=404).get(index=self.index, id=key, source=source))
        body = dict(response.body)
        return body if body.get("found") else None

    def _call(self, action: Callable[[Elasticsearch], Any]) -> Any:
        return self._es.call(action)
