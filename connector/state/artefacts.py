"""Model artefacts in Elasticsearch: a model directory stored whole, fetched by any replica, checked by checksum.

A model is a directory (``model.txt``, ``contract.json``, metrics, the gate's decision — whatever the
model contract writes). ``EsArtefacts.put`` stores every file of it in one document of the models
index (``<index>:<model id>``): relative path, SHA-256, size and the bytes (base64, a ``binary`` field
neither indexed nor searchable). ``fetch`` writes them to a local cache directory, refusing any file
whose bytes do not match its checksum, under a temporary name renamed into place, so a replica never
loads half a model or a corrupted one. A local copy whose checksums all match is used as it is.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.state.lazy_index import LazyIndex
from hybridrank.errors import ModelError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

ARTEFACT_MAPPING: dict[str, Any] = {"dynamic": False, "properties": {
    "index": {"type": "keyword"}, "model_id": {"type": "keyword"},
    "files": {"type": "object", "enabled": False}}}


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path (hidden staging files excluded)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".tmp")}


class EsArtefacts:
    """Model directories stored in the Elasticsearch index ``index``."""

    def __init__(self, client_factory: Callable[[], Elasticsearch], index: str) -> None:
        self.index = index
        self._es = LazyIndex(client_factory, index, ARTEFACT_MAPPING)

    def put(self, index: str, model_id: str, folder: Path) -> dict[str, str]:
        """Store ``folder`` as the artefact of (index, model_id) unless an identical one is stored; its checksums."""
        sums = checksums(folder)
        if not sums:
            raise ModelError(f"{folder} holds no files to store")
        if self.stored_checksums(index, model_id) == sums:
            return sums
        files = [{"path": rel, "sha256": digest, "size": (folder / rel).stat().st_size,
                  "data": base64.b64encode((folder / rel).read_bytes()).decode("ascii")}
                 for rel, digest in sums.items()]
        self._call(lambda c: c.index(index=self.index, id=_doc_id(index, model_id), refresh=True,
                                     document={"index": index, "model_id": model_id, "files": files}))
        return sums

    def stored_checksums(self, index: str, model_id: str) -> dict[str, str] | None:
        found = self._get(index, model_id, source_excludes=["files.data"])
        return None if found is None else {f["path"]: f["sha256"] for f in found["files"]}

    def fetch(self, index: str, model_id: str, dest: Path) -> Path:
        """``dest`` holding the stored artefact (downloaded unless an identical copy is there); ``ModelError``
        if none is stored or a file's bytes do not match its checksum."""
        stored = self.stored_checksums(index, model_id)
        if stored is None:
            raise ModelError(f"no stored artefact of model {model_id!r} of index {index!r} in [{self.index}]")
        if dest.is_dir() and checksums(dest) == stored:
            return dest
        found = self._get(index, model_id)
        assert found is not None
        staging = dest.parent / f".tmp-fetch-{dest.name}"
        shutil.rmtree(staging, ignore_errors=True)
        for entry in found["files"]:
            data = base64.b64decode(entry["data"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                shutil.rmtree(staging, ignore_errors=True)
                raise ModelError(f"stored artefact of model {model_id!r}: {entry['path']} does not match its "
                                 "checksum; refusing to load it")
            target = staging / entry["path"]
            if staging.resolve() not in target.resolve().parents:
                raise ModelError(f"stored artefact of model {model_id!r} names a path outside it: {entry['path']}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        shutil.rmtree(dest, ignore_errors=True)
        staging.replace(dest)
        return dest

    # -- Elasticsearch ----------------------------------------------------------------------------
    def _get(self, index: str, model_id: str, **options: Any) -> dict[str, Any] | None:
        response = self._call(lambda c: c.options(ignore_status=404).get(
            index=self.index, id=_doc_id(index, model_id), **options))
        body = dict(response.body)
        return dict(body["_source"]) if body.get("found") else None

    def _call(self, action: Callable[[Elasticsearch], Any]) -> Any:
        return self._es.call(action)


def _doc_id(index: str, model_id: str) -> str:
    return f"{index}:{model_id}"
