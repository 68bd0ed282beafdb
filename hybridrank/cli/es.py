"""``hybridrank es start|stop|status``: the managed local Elasticsearch, or a check of the external one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, settings_from

if TYPE_CHECKING:
    from connector.node.capabilities import ClusterInfo
    from connector.node.cluster import LocalCluster
    from connector.node.launcher import LocalElasticsearch
    from hybridrank.config import Settings


def _heap(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d+[mg]", value):
        raise click.BadParameter(f"a heap size such as 512m or 2g, got {value!r}")
    return value


def _node(settings: Settings, port: int | None, name: str, heap: str | None = None) -> LocalElasticsearch:
    from connector.node.launcher import LocalElasticsearch

    return LocalElasticsearch.from_settings(settings, port=port, name=name, heap=heap)


def _recorded_cluster(settings: Settings, name: str) -> LocalCluster | None:
    from connector.node.cluster import LocalCluster

    return LocalCluster.recorded(settings, name)


def _external_info(settings: Settings) -> ClusterInfo:
    from connector.client import make_client
    from connector.node.capabilities import detect

    return detect(make_client(settings, timeout_s=10))


def _node_info(node: LocalElasticsearch, settings: Settings) -> ClusterInfo:
    from connector.client import make_client
    from connector.node.capabilities import detect

    cluster = settings.cluster
    if node.security:
        cluster = cluster.model_copy(update={"username": node.username, "password": node.password, "api_key": ""})
    return detect(make_client(settings.model_copy(update={"cluster": cluster}), url=node.url, timeout_s=10))


name_option = click.option("--name", default="default", show_default=True,
                           help="Which managed node (each has its own data directory).")
port_option = click.option("--port", type=click.IntRange(1, 65535), default=None,
                           help="HTTP port (default: cluster.port from the config, 9250).")


@click.group()
def es() -> None:
    """Start, stop or inspect the managed local Elasticsearch (one node, or --nodes N on loopback)."""


@es.command()
@port_option
@click.option("--heap", default=None, callback=_heap, help="JVM heap, e.g. 1g (default: cluster.heap).")
@click.option("--wait", "wait_s", type=click.FloatRange(1, 3600), default=120, show_default=True,
              help="Seconds to wait for the node to become healthy.")
@click.option("--nodes", type=click.IntRange(1, 9), default=None,
              help="Form a cluster of this many nodes on loopback (ports PORT..PORT+N-1, one data directory "
                   "each); default: as last started under this --name, else 1.")
@name_option
@click.pass_context
@handle_errors
def start(ctx: click.Context, port: int | None, heap: str | None, wait_s: float, nodes: int | None,
          name: str) -> None:
    """Download (once) and start the node(s); do nothing if they already run or an external cluster is configured."""
    settings = settings_from(ctx)
    if settings.cluster.url:
        info = _external_info(settings)
        click.echo(f"using the external cluster at {settings.cluster.url} (Elasticsearch {info.version}); "
                   "nothing started")
        return
    recorded = _recorded_cluster(settings, name)
    if nodes is None and recorded is not None:
        nodes = recorded.layout.nodes
    if nodes is not None and nodes > 1:
        from connector.node.cluster import LocalCluster

        cluster = LocalCluster(settings, name=name, nodes=nodes, port=port, heap=heap)
        states = cluster.start(wait_s=wait_s)
        verb = "already running" if cluster.last_start_s is None else f"started in {cluster.last_start_s:.1f} s"
        click.echo(f"cluster {name!r} of {nodes} nodes {verb}: " + ", ".join(f"{s.url} (pid {s.pid})" for s in states))
        return
    if recorded is not None:
        if any(s.running for s in recorded.status()):
            raise click.ClickException(f"the {recorded.layout.nodes}-node cluster {name!r} runs; stop it first "
                                       "(`hybridrank es stop`)")
        from connector.node.cluster import layout_file

        layout_file(settings, name).unlink(missing_ok=True)  # a single node from now on
    node = _node(settings, port, name, heap)
    status = node.start(wait_s=wait_s)
    if node.last_start_s is None:
        click.echo(f"already running: Elasticsearch {status.version} at {status.url} (pid {status.pid})")
    else:
        click.echo(f"started Elasticsearch {status.version} at {status.url} (pid {status.pid}) "
                   f"in {node.last_start_s:.1f} s; data in {node.node_dir}")
    if node.security:
        click.echo(f"security on: user {node.username!r}, password in {node.node_dir / 'elastic-password'}"
                   if not settings.cluster.password else f"security on: user {node.username!r}")


@es.command()
@port_option
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=30, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@name_option
@click.pass_context
@handle_errors
def stop(ctx: click.Context, port: int | None, timeout_s: float, name: str) -> None:
    """Stop the managed node (SIGTERM, then SIGKILL after --timeout)."""
    settings = settings_from(ctx)
    if settings.cluster.url:
        click.echo(f"an external cluster is configured ({settings.cluster.url}); nothing to stop")
        return
    cluster = _recorded_cluster(settings, name)
    if cluster is not None:
        stopped = cluster.stop(timeout_s=timeout_s)
        click.echo(f"stopped {stopped} of the {cluster.layout.nodes} nodes of cluster {name!r}")
        return
    node = _node(settings, port, name)
    pid = node.status().pid
    if node.stop(timeout_s=timeout_s):
        click.echo(f"stopped Elasticsearch at {node.url} (pid {pid})")
    else:
        click.echo(f"not running: {node.url}")


@es.command()
@port_option
@name_option
@click.pass_context
@handle_errors
def status(ctx: click.Context, port: int | None, name: str) -> None:
    """Say whether the node runs, its version and capabilities; exit 1 if it does not run."""
    settings = settings_from(ctx)
    if settings.cluster.url:
        info = _external_info(settings)
        click.echo(f"external cluster at {settings.cluster.url}: {info.describe()}")
        return
    cluster = _recorded_cluster(settings, name)
    if cluster is not None:
        states = cluster.status()
        for member, state in zip(cluster.members, states, strict=True):
            click.echo(f"{member.name}: " + (f"running at {state.url} (pid {state.pid})" if state.running
                                            else f"not running ({state.url})"))
        if not any(s.running for s in states):
            ctx.exit(1)
        health = cluster.health()
        click.echo(f"cluster {health['cluster_name']}: {health['status']}, {health['number_of_nodes']} nodes, "
                   f"{health['active_shards']} active shards, {health['unassigned_shards']} unassigned")
        return
    node = _node(settings, port, name)
    state = node.status()
    if not state.running:
        click.echo(f"not running: {state.url} (start it with `hybridrank es start`)")
        ctx.exit(1)
    if state.version is None:
        click.echo(f"running (pid {state.pid}) but not answering at {state.url}")
        ctx.exit(1)
    click.echo(f"running at {state.url} (pid {state.pid}): {_node_info(node, settings).describe()}")
