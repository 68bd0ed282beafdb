"""The managed local Elasticsearch: one single-node server on loopback, installed, started, stopped, asked.

Layout under the cache directory (``settings.home``, outside the repository)::

    dist/elasticsearch-<version>.zip         the integ-test-zip, fetched once with ``mvn``
    elasticsearch-<version>/                 the unpacked server (shared by every node)
    nodes/<name>/config/                     the node's own config (keystore, hunspell dictionaries)
    nodes/<name>/data/  nodes/<name>/logs/   its data and logs; ``es.pid`` beside them

``LocalElasticsearch`` puts the parts together: a JDK (``connector.node.java``), the server
(``connector.node.distribution``), the node's command line and config (``connector.node.configuration``),
the project's own plugin (``connector.node.plugin``), the system user it runs as when we are root
(``connector.node.service_user``) and the pid, port and lock helpers (``connector.node.process``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from connector.node.configuration import (
    Discovery,
    build_command,
    build_env,
    prepare_config,
    set_bootstrap_password,
    transport_port_for,
)
from connector.node.distribution import download, unpack
from connector.node.java import find_java
from connector.node.plugin import install_plugin, plugin_zip
from connector.node.process import LOG_TAIL_LINES, live_pid, locked, port_in_use, tail, terminate
from connector.node.service_user import SERVICE_USER, base_dir_for, chown_tree, ensure_service_user, privilege_prefix
from hybridrank.config import ClusterConfig, Settings
from hybridrank.errors import ConfigError, LauncherError

log = logging.getLogger(__name__)

ELASTIC_USER = "elastic"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``status()`` reports about one managed node."""

    running: bool
    pid: int | None
    url: str
    version: str | None


class LocalElasticsearch:
    """One managed single-node Elasticsearch on loopback, identified by ``name`` (its own data and port)."""

    def __init__(
        self,
        *,
        home: Path,
        version: str,
        port: int,
        heap: str = "1g",
        name: str = "default",
        security: bool = False,
        password: str = "",
        discovery: Discovery | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise LauncherError(f"node name {name!r} must be letters, digits, '.', '_' or '-'")
        self.as_root = os.geteuid() == 0
        self.run_as: str | None = SERVICE_USER if self.as_root else None
        self.base = base_dir_for(Path(home).expanduser(), as_root=self.as_root)
        self.version = version
        self.port = port
        self.heap = heap
        self.name = name
        self.security = security
        self._configured_password = password
        self.discovery = discovery  # None: a single-node cluster; else this node is one member of several
        self.last_start_s: float | None = None
        self.plugin_changed = False  # ensure_installed put a new plugin build into the server

    @classmethod
    def from_settings(
        cls, settings: Settings, *, port: int | None = None, name: str = "default", heap: str | None = None
    ) -> LocalElasticsearch:
        """The node the settings describe; ``port``/``heap`` override ``settings.cluster`` (heap is validated)."""
        cluster = settings.cluster
        if heap is not None:
            try:
                cluster = ClusterConfig.model_validate({**cluster.model_dump(), "heap": heap})
            except ValidationError as exc:
                raise ConfigError(f"heap: {heap!r} is not a size such as 512m or 2g") from exc
        node = cls(
            home=settings.home,
            version=cluster.es_version,
            port=port if port is not None else cluster.port,
            heap=cluster.heap,
            name=name,
            security=cluster.security,
            password=cluster.password,
        )
        if port is None:  # a running node keeps the port it was started on (``start --port``)
            node.port = node.recorded_port() or node.port
        return node

    # -- paths
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def es_home(self) -> Path:
        return self.base / f"elasticsearch-{self.version}"

    @property
    def node_dir(self) -> Path:
        return self.base / "nodes" / self.name

    @property
    def conf_dir(self) -> Path:
        return self.node_dir / "config"

    @property
    def logs_dir(self) -> Path:
        return self.node_dir / "logs"

    @property
    def pidfile(self) -> Path:
        return self.node_dir / "es.pid"

    @property
    def portfile(self) -> Path:
        return self.node_dir / "http.port"

    def recorded_port(self) -> int | None:
        """The HTTP port this node runs on, if it runs (recorded at start), else None."""
        if self._pid() is None:
            return None
        try:
            return int(self.portfile.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def cluster_name(self) -> str:
        if self.discovery is not None:
            return self.discovery.cluster_name
        return f"hybridrank-{self.name}" if not self.name.startswith("hybridrank") else self.name

    @property
    def log_file(self) -> Path:
        return self.logs_dir / f"{self.cluster_name}.log"

    # -- credentials (security on only)
    @property
    def username(self) -> str:
        return ELASTIC_USER

    @property
    def password(self) -> str:
        """The ``elastic`` user's password: the configured one, else one generated once and kept beside the node."""
        if self._configured_password:
            return self._configured_password
        secret = self.node_dir / "elastic-password"
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(18))
        return secret.read_text().strip()

    # -- install
    def ensure_installed(self) -> Path:
        """Fetch and unpack the server if needed, prepare this node's config dir; return the server's home."""
        java = find_java()
        log.debug("using Java %d at %s", java.major, java.path)
        with locked(self.base / ".install.lock"):
            for directory in (self.base, self.base / "nodes"):
                directory.mkdir(parents=True, exist_ok=True)
                if self.as_root:
                    os.chmod(directory, 0o755)
            if not (self.es_home / "bin" / "elasticsearch").is_file():
                unpack(download(self.base / "dist", self.version), self.es_home)
            zip_path = plugin_zip(self.version)
            if zip_path is None:
                log.info("the hybridrank plugin is not built (scripts/bootstrap.sh builds it): this node has no "
                         "GET /, no native vector-similarity script and no English stemmers")
            else:
                self.plugin_changed = install_plugin(self.es_home, zip_path, self.version)
            prepare_config(self.es_home, self.conf_dir)
        return self.es_home

    # -- run
    def start(self, wait_s: float = 120) -> NodeStatus:
        """Start the node unless it already runs; return once the cluster is yellow or raise ``LauncherError``."""
        self.ensure_installed()
        with locked(self.node_dir / ".start.lock"):
            pid = self._pid()
            if pid is not None:
                if self._wait_healthy(min(wait_s, 30)):
                    log.info("Elasticsearch %r already running at %s (pid %d)", self.name, self.url, pid)
                    if self.plugin_changed:
                        log.warning("the hybridrank plugin changed: node %r loads it when restarted "
                                    "(`hybridrank es stop`, then start)", self.name)
                    return self.status()
                raise LauncherError(
                    f"node {self.name!r} (pid {pid}) runs but does not answer at {self.url}; "
                    f"stop it with `hybridrank es stop`. Last log lines:\n{tail(self.log_file)}"
                )
            began = time.monotonic()
            self.launch(wait_s)
            remaining = max(5.0, wait_s - (time.monotonic() - began))
            if not self._wait_healthy(remaining):
                raise LauncherError(
                    f"Elasticsearch {self.version} did not become healthy at {self.url} within {wait_s:.0f} s. "
                    f"Last {LOG_TAIL_LINES} lines of {self.log_file}:\n{tail(self.log_file)}"
                )
            self.last_start_s = time.monotonic() - began
            log.info("Elasticsearch %s up at %s in %.1f s", self.version, self.url, self.last_start_s)
            return self.status()

    def launch(self, wait_s: float) -> None:
        """Start the process (its ports must be free) without waiting for the cluster: a cluster member's
        cluster forms only once enough members run (``connector.node.cluster`` launches them together)."""
        for port in (self.port, transport_port_for(self.port)):
            if port_in_use(port):
                raise LauncherError(
                    f"port {port} on 127.0.0.1 is taken by another process; choose another with --port"
                )
        self._launch(wait_s)

    def _launch(self, wait_s: float) -> None:
        java = find_java()
        for directory in (self.node_dir / "data", self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        if self.as_root:
            os.chmod(self.node_dir, 0o755)
            ensure_service_user(SERVICE_USER)
            chown_tree(self.node_dir, SERVICE_USER)
        env = build_env(
            os.environ,
            java_home=java.path,
            conf_dir=self.conf_dir,
            heap=self.heap,
            home_dir=self.node_dir if self.as_root else None,
        )
        if self.security:
            set_bootstrap_password(self.es_home, self.conf_dir, password=self.password,
                                   marker=self.node_dir / ".bootstrap-password.sha256", run_as=self.run_as, env=env)
        command = privilege_prefix(self.run_as) + build_command(
            self.es_home,
            http_port=self.port,
            data_dir=self.node_dir / "data",
            logs_dir=self.logs_dir,
            pidfile=self.pidfile,
            cluster_name=self.cluster_name,
            security=self.security,
            node_name=self.name if self.discovery is not None else None,
            discovery=self.discovery,
        )
        launcher_out = self.node_dir / "launcher.out"
        log.debug("starting: %s", " ".join(command))
        # with -d the CLI returns once the server reports it is ready (or failed)
        with launcher_out.open("w") as out:
            try:
                result = subprocess.run(
                    command, env=env, cwd=self.logs_dir, stdout=out, stderr=subprocess.STDOUT, timeout=wait_s
                )
            except subprocess.TimeoutExpired as exc:
                raise LauncherError(
                    f"Elasticsearch did not start within {wait_s:.0f} s. Last log lines:\n{tail(self.log_file)}"
                ) from exc
        if result.returncode != 0:
            raise LauncherError(
                f"Elasticsearch exited with code {result.returncode} while starting.\n"
                f"Launcher output:\n{tail(launcher_out, 15)}\nLast lines of {self.log_file}:\n{tail(self.log_file)}"
            )
        self.portfile.write_text(f"{self.port}\n")

    def stop(self, timeout_s: float = 30) -> bool:
        """SIGTERM the node, SIGKILL it after ``timeout_s``; True if a running node was stopped."""
        pid = self._pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        terminate(pid, timeout_s)
        self.pidfile.unlink(missing_ok=True)
        self.portfile.unlink(missing_ok=True)
        return True

    def status(self) -> NodeStatus:
        """Whether this node's process runs, and the version it answers with (None if it does not answer)."""
        pid = self._pid()
        version = None
        if pid is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, StopIteration):
                nodes = self._get_json("/_nodes/_local?filter_path=nodes.*.version", timeout_s=5)["nodes"]
                version = next(iter(nodes.values()))["version"]
        return NodeStatus(running=pid is not None, pid=pid, url=self.url, version=version)

    # -- helpers
    def _pid(self) -> int | None:
        """The node's pid if its pidfile names a live process."""
        return live_pid(self.pidfile)

    def _auth_headers(self) -> dict[str, str]:
        if not self.security:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _get_json(self, path: str, *, timeout_s: float) -> Any:
        request = urllib.request.Request(self.url + path, headers=self._auth_headers())
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())

    def _wait_healthy(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(OSError, ValueError):
                wait = max(1, int(min(remaining, 30)))
                health = self._get_json(
                    f"/_cluster/health?wait_for_status=yellow&timeout={wait}s", timeout_s=wait + 5
                )
                if health.get("status") in ("yellow", "green"):
                    return True
            time.sleep(0.5)
