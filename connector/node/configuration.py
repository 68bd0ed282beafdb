"""How a managed node is configured: its command line, its environment, its own config directory.

Every setting goes on the command line (``-E``): single node (or a member of a loopback cluster, given
its ``Discovery``), loopback only, its own ports, data and logs, no disk watermarks, security on or
off. The node gets a copy of the server's config directory
with the hunspell ``en_US`` dictionary (for the ``english_hunspell`` analyzer) and, with security on,
the ``elastic`` bootstrap password in its keystore. The command line and environment are pure
functions, testable without starting anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from connector.node.service_user import privilege_prefix
from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

HUNSPELL_SEARCH_DIRS: tuple[Path, ...] = (
    Path("/usr/share/hunspell"),
    Path("/usr/share/myspell/dicts"),
    Path("/usr/share/myspell"),
)
HUNSPELL_LOCALE = "en_US"


def transport_port_for(http_port: int) -> int:
    """A transport port outside Elasticsearch's default 9300-9399 range, derived from the HTTP port."""
    port = http_port + 20000
    return port if port <= 65535 else http_port - 20000


@dataclass(frozen=True, slots=True)
class Discovery:
    """How a member of a multi-node loopback cluster finds the others: every member's node name and
    HTTP port (its transport port is ``transport_port_for`` of it); all of them are master-eligible."""

    cluster_name: str
    members: tuple[tuple[str, int], ...]

    def settings(self) -> dict[str, str]:
        return {
            "discovery.seed_hosts": ",".join(f"127.0.0.1:{transport_port_for(port)}" for _, port in self.members),
            "cluster.initial_master_nodes": ",".join(name for name, _ in self.members),
        }


def build_command(
    es_home: Path,
    *,
    http_port: int,
    data_dir: Path,
    logs_dir: Path,
    pidfile: Path,
    cluster_name: str,
    security: bool = False,
    node_name: str | None = None,
    discovery: Discovery | None = None,
) -> list[str]:
    """The ``bin/elasticsearch`` command line of a loopback-only, daemonised node: a single-node cluster,
    or with ``discovery`` one member of a multi-node cluster."""
    settings: dict[str, str] = {
        "cluster.name": cluster_name,
        "node.name": node_name or cluster_name,
        **({"discovery.type": "single-node"} if discovery is None else discovery.settings()),
        "network.host": "127.0.0.1",
        "http.port": str(http_port),
        "transport.port": str(transport_port_for(http_port)),
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
        # a nearly full dev disk must not turn indices read-only mid-test
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "xpack.security.enabled": str(security).lower(),
    }
    if security:
        settings["xpack.security.http.ssl.enabled"] = "false"
        settings["xpack.security.transport.ssl.enabled"] = "false"
    command = [str(es_home / "bin" / "elasticsearch"), "-d", "-p", str(pidfile)]
    for key, value in settings.items():
        command += ["-E", f"{key}={value}"]
    return command


def build_env(
    base: Mapping[str, str], *, java_home: Path, conf_dir: Path, heap: str, home_dir: Path | None = None
) -> dict[str, str]:
    """The environment of an Elasticsearch process: its JDK, its own config dir, a fixed heap."""
    env = {k: v for k, v in base.items() if k not in ("JAVA_HOME", "ES_JAVA_OPTS", "ES_HOME")}
    env["ES_JAVA_HOME"] = str(java_home)
    env["ES_PATH_CONF"] = str(conf_dir)
    env["ES_JAVA_OPTS"] = f"-Xms{heap} -Xmx{heap}"
    if home_dir is not None:
        env["HOME"] = str(home_dir)
    return env


def find_hunspell(locale: str = HUNSPELL_LOCALE, search_dirs: Sequence[Path] | None = None) -> Path | None:
    """The directory holding ``<locale>.aff`` and ``<locale>.dic`` (env ``HYBRIDRANK_HUNSPELL_DIR`` first)."""
    dirs = list(HUNSPELL_SEARCH_DIRS if search_dirs is None else search_dirs)
    if extra := os.environ.get("HYBRIDRANK_HUNSPELL_DIR"):
        dirs.insert(0, Path(extra))
    for directory in dirs:
        if (directory / f"{locale}.aff").is_file() and (directory / f"{locale}.dic").is_file():
            return directory
    return None


def prepare_config(es_home: Path, conf_dir: Path) -> None:
    """Give the node its own config dir (a copy of the server's) and the hunspell en_US dictionary."""
    if not (conf_dir / "jvm.options").is_file():
        shutil.copytree(
            es_home / "config",
            conf_dir,
            ignore=shutil.ignore_patterns("elasticsearch.keystore"),
            dirs_exist_ok=True,
        )
    source = find_hunspell()
    target = conf_dir / "hunspell" / HUNSPELL_LOCALE
    if source is None:
        if not target.is_dir():
            log.warning(
                "no hunspell %s dictionary found (install `hunspell-en-us`); the english_hunspell "
                "analyzer will not be available on this node",
                HUNSPELL_LOCALE,
            )
        return
    target.mkdir(parents=True, exist_ok=True)
    for suffix in (".aff", ".dic"):
        src, dst = source / f"{HUNSPELL_LOCALE}{suffix}", target / f"{HUNSPELL_LOCALE}{suffix}"
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)


def set_bootstrap_password(
    es_home: Path, conf_dir: Path, *, password: str, marker: Path, run_as: str | None, env: dict[str, str]
) -> None:
    """Put ``bootstrap.password`` in the node's keystore: the ``elastic`` password until one is stored.

    ``marker`` keeps the digest of the password last stored, so an unchanged keystore is left alone.
    """
    # each keystore-tool run is a JVM start (several seconds here): skip it when the keystore already
    # holds this password, and let `add --force` create the keystore when there is none
    digest = hashlib.sha256(password.encode()).hexdigest()
    keystore = conf_dir / "elasticsearch.keystore"
    if keystore.exists() and marker.exists() and marker.read_text().strip() == digest:
        return
    tool = [*privilege_prefix(run_as), str(es_home / "bin" / "elasticsearch-keystore")]
    _run_tool([*tool, "add", "--force", "--stdin", "bootstrap.password"], env, password + "\n")
    marker.write_text(digest + "\n")


def _run_tool(command: list[str], env: dict[str, str], stdin: str | None) -> None:
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise LauncherError(f"`{' '.join(command[-3:])}` failed: {(result.stdout + result.stderr).strip()}")
