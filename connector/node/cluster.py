"""A managed multi-node cluster on loopback: N ``LocalElasticsearch`` members that find each other.

Member ``i`` of the cluster ``<name>`` is the node ``<name>-<i>`` (its own data, logs and config under
``nodes/<name>-<i>/``) on HTTP port ``port + i`` (transport ``transport_port_for(port + i)``); every
member is master-eligible, seeds on all the others and names them all in
``cluster.initial_master_nodes``. ``clusters/<name>.json`` remembers the member count and base port,
so ``es stop`` and ``es status`` find the members without being told again.

The members start together (each JVM waits for a master before it reports ready, and no master can
be elected before a majority runs), then the cluster is waited for: every member joined, yellow.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.node.configuration import Discovery
from connector.node.launcher import LocalElasticsearch, NodeStatus
from hybridrank.config import Settings
from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """What ``clusters/<name>.json`` records: how many members, from which HTTP port, with which heap."""

    nodes: int
    port: int
    heap: str


def layout_file(settings: Settings, name: str) -> Path:
    """``<home>/clusters/<name>.json`` (read and written by the CLI only, never by the nodes)."""
    return Path(settings.home).expanduser() / "clusters" / f"{name}.json"


def read_layout(settings: Settings, name: str) -> ClusterLayout | None:
    """The recorded layout of the managed cluster ``name``; None if it was never started with several nodes."""
    path = layout_file(settings, name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ClusterLayout(nodes=int(raw["nodes"]), port=int(raw["port"]), heap=str(raw["heap"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise LauncherError(f"{path} is unreadable ({exc}); remove it once the cluster's nodes are stopped") from exc


class LocalCluster:
    """The members of one managed loopback cluster; ``start``/``stop``/``status`` act on all of them."""

    def __init__(self, settings: Settings, *, name: str, nodes: int, port: int | None = None,
                 heap: str | None = None) -> None:
        if nodes < 2:
            raise LauncherError("a managed cluster has at least 2 nodes (1 is `hybridrank es start` without --nodes)")
        if settings.cluster.security:
            raise LauncherError("security with several nodes needs transport TLS, which the managed cluster "
                                "does not set up; run the cluster without security or use an external one")
        self.settings = settings
        self.name = name
        self.layout = ClusterLayout(nodes=nodes, port=port if port is not None else settings.cluster.port,
                                    heap=heap or settings.cluster.heap)
        if self.layout.port + nodes - 1 > 65535:
            raise LauncherError(f"ports {self.layout.port}..{self.layout.port + nodes - 1} do not fit below 65536")
        names = [f"{name}-{i}" for i in range(nodes)]
        discovery = Discovery(cluster_name=name if name.startswith("hybridrank") else f"hybridrank-{name}",
                              members=tuple((n, self.layout.port + i) for i, n in enumerate(names)))
        self.members = [
            LocalElasticsearch(home=settings.home, version=settings.cluster.es_version, port=self.layout.port + i,
                               heap=self.layout.heap, name=n, discovery=discovery)
            for i, n in enumerate(names)
        ]
        self.last_start_s: float | None = None  # set by start when it launched a member

    @classmethod
    def recorded(cls, settings: Settings, name: str) -> LocalCluster | None:
        """The cluster ``clusters/<name>.json`` describes, if any."""
        layout = read_layout(settings, name)
        if layout is None:
            return None
        return cls(settings, name=name, nodes=layout.nodes, port=layout.port, heap=layout.heap)

    @property
    def url(self) -> str:
        return self.members[0].url

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def start(self, wait_s: float = 180) -> list[NodeStatus]:
        """Start every member not running yet, together; return once all joined and the cluster is yellow."""
        for member in self.members:
            member.ensure_installed()
        path = layout_file(self.settings, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"nodes": self.layout.nodes, "port": self.layout.port,
                                    "heap": self.layout.heap}) + "\n", encoding="utf-8")
        began = time.monotonic()
        waiting = [m for m in self.members if not m.status().running]
        if waiting:
            with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
                for future in [pool.submit(m.launch, wait_s) for m in waiting]:
                    future.result()
        self.wait_for(nodes=self.layout.nodes, status="yellow", wait_s=max(10.0, wait_s - (time.monotonic() - began)))
        self.last_start_s = time.monotonic() - began if waiting else None
        return self.status()

    def start_member(self, index: int, wait_s: float = 180) -> None:
        """Start one stopped member again (it rejoins the running cluster)."""
        self.members[index].launch(wait_s)

    def stop(self, timeout_s: float = 30) -> int:
        """Stop every running member; the number stopped."""
        return sum(member.stop(timeout_s) for member in self.members)

    def status(self) -> list[NodeStatus]:
        return [member.status() for member in self.members]

    def health(self, *, timeout_s: float = 5) -> dict[str, Any]:
        """``_cluster/health`` from the first member that answers."""
        last: Exception | None = None
        for member in self.members:
            if not member.status().running:
                continue
            try:
                health: dict[str, Any] = member._get_json("/_cluster/health", timeout_s=timeout_s)
                return health
            except (OSError, ValueError) as exc:
                last = exc
        raise LauncherError(f"no member of cluster {self.name!r} answers ({last})")

    def wait_for(self, *, nodes: int, status: str, wait_s: float) -> dict[str, Any]:
        """Wait until exactly ``nodes`` members are in the cluster and it is at least ``status``: after a
        node stops, the master drops it a moment later, so "at least" would answer before it has."""
        deadline = time.monotonic() + wait_s
        health: dict[str, Any] = {}
        order = {"red": 0, "yellow": 1, "green": 2}
        while time.monotonic() < deadline:
            try:
                health = self.health()
            except LauncherError:
                health = {}
            if health.get("number_of_nodes", 0) == nodes and order.get(health.get("status", "red"), 0) >= order[status]:
                return health
            time.sleep(0.5)
        raise LauncherError(f"cluster {self.name!r} did not reach {nodes} nodes and {status} within {wait_s:.0f} s "
                            f"(last health: {health or 'no answer'}). Last lines of {self.members[0].log_file}:\n"
                            f"{_tail(self.members[0])}")


def _tail(member: LocalElasticsearch) -> str:
    from connector.node.process import tail

    return tail(member.log_file)
