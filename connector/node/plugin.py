"""The project's own Elasticsearch plugin (``plugin/``), installed into the managed node's server.

The integ-test-zip server lacks three modules a stock node has; the plugin supplies what hybridrank
needs of them (``plugin/README.md``): ``GET /`` as ``rest-root`` answers it (so the official client's
``info()`` and ``ping()`` work), the native score script ``hybridrank``/``vector_similarity`` (exact vector
similarity where painless is missing), and English stemming filters (``hybridrank_porter_stem``...).

``scripts/bootstrap.sh`` builds the zip (``plugin/build.sh``) for the node's exact version; the launcher
installs it with ``install_plugin`` before a node starts: unpacked into ``<es_home>/plugins/hybridrank``
(staged beside it, then renamed), with the zip's checksum beside it so an unchanged zip is not
installed twice and a rebuilt one replaces the old. A plugin loads when a node starts, so a node
already running keeps what it had until it is restarted. No zip (a checkout that never ran the
bootstrap, or an installed package) means no plugin: the node starts without it and says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

PLUGIN_NAME = "hybridrank"
DESCRIPTOR = "plugin-descriptor.properties"
CHECKSUM_FILE = ".zip-sha256"
ZIP_ENV = "HYBRIDRANK_ES_PLUGIN"  # a zip elsewhere; default: the repository's plugin/target
REPO_PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugin"


def plugin_zip(version: str, *, plugin_dir: Path = REPO_PLUGIN_DIR) -> Path | None:
    """The built plugin for Elasticsearch ``version`` (``$HYBRIDRANK_ES_PLUGIN`` if set), or None."""
    named = os.environ.get(ZIP_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise LauncherError(f"{ZIP_ENV}={named}: no such file")
        return path
    path = plugin_dir / "target" / f"hybridrank-es-plugin-{version}.zip"
    return path if path.is_file() else None


def descriptor(text: str) -> dict[str, str]:
    """``key=value`` lines of a plugin descriptor (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def install_plugin(es_home: Path, zip_path: Path, version: str) -> bool:
    """Install the zip into ``es_home``'s plugins unless that exact zip is installed; True if it changed.

    Refuses (``LauncherError``) a zip that is not a plugin for this server's ``version``: Elasticsearch
    would refuse to start with it, and a node that does not start is worse than one without the plugin.
    """
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    target = es_home / "plugins" / PLUGIN_NAME
    if (target / CHECKSUM_FILE).is_file() and (target / CHECKSUM_FILE).read_text().strip() == digest:
        return False
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise LauncherError(f"{zip_path} is not a zip ({exc}): rebuild it with `plugin/build.sh`") from exc
    with archive:
        names = archive.namelist()
        if DESCRIPTOR not in names:
            raise LauncherError(f"{zip_path} is not an Elasticsearch plugin: it has no {DESCRIPTOR}")
        built_for = descriptor(archive.read(DESCRIPTOR).decode("utf-8")).get("elasticsearch.version")
        if built_for != version:
            raise LauncherError(f"{zip_path} was built for Elasticsearch {built_for}, the node is {version}: "
                                f"rebuild it with `plugin/build.sh -Des.version={version}`")
        unsafe = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
        if unsafe:
            raise LauncherError(f"{zip_path}: refusing entries outside the plugin folder: {unsafe}")
        target.parent.mkdir(parents=True, exist_ok=True)
        # staged outside plugins/: the node would take a leftover folder there for a plugin
        staging = Path(tempfile.mkdtemp(prefix=f".plugin-{PLUGIN_NAME}-", dir=es_home))
        try:
            archive.extractall(staging)
            (staging / CHECKSUM_FILE).write_text(digest + "\n")
            for path in [staging, *staging.rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)  # the node's service user reads it
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("installed the hybridrank plugin into %s (nodes load it when they start)", target)
    return True
