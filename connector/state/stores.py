"""The shared state the settings name: files under the home, or documents in Elasticsearch (``[state]``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from connector.state.artefacts import EsArtefacts
from connector.state.documents import Documents, EsDocuments, FileDocuments
from hybridrank.config import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def _state_client_factory(settings: Settings) -> Callable[[], Elasticsearch]:
    from connector.client import make_client

    # the endpoint's own work (like shipping events): the configured credentials, a short timeout
    return lambda: make_client(settings, timeout_s=max(2.0, settings.state.refresh_s * 5))


def shared_documents(settings: Settings) -> Documents:
    """Experiments, serving assignments and click statistics, where ``[state] store`` says."""
    if settings.state.store == "elasticsearch":
        return EsDocuments(_state_client_factory(settings), settings.state.index)
    home = Path(settings.home).expanduser()
    return FileDocuments(home, {"experiments": settings.experiments_file,
                                "registry": home / "models" / "registry.json"})


def shared_artefacts(settings: Settings) -> EsArtefacts | None:
    """Where model artefacts are shared between machines; None = the local model store is the only copy."""
    if settings.state.store == "elasticsearch":
        return EsArtefacts(_state_client_factory(settings), settings.state.models_index)
    return None
