"""``hybridrank es start|stop|status``: the managed local Elasticsearch, or a check of the external one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, settings_from

if TYPE_CHECKING:
    from connector.node.capabilities import ClusterInfo
    from connector.node.launcher import LocalElasticsearch
    from hybridrank.config import Settings


def _heap(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d+[mg]", value):
        raise click.BadParameter(f"a heap size such as 512m or 2g, got {value!r}")
    return value


def _node(settings: Settings, port: int | None, name: str, heap: str | None = None) -> LocalElasticsearch:
    from connector.node.launcher import LocalElasticsearch

    return LocalElasticsearch.from_settings(settings, port=port, name=name, heap=heap)


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
    """Start, stop or inspect the managed local Elasticsearch (single node, loopback only)."""


@es.command()
@port_option
@click.option("--heap", default=None, callback=_heap, help="JVM heap, e.g. 1g (default: cluster.heap).")
@click.option("--wait", "wait_s", type=click.FloatRange(1, 3600), default=120, show_default=True,
              help="Seconds to wait for the node to become healthy.")
@name_option
@click.pass_context
@handle_errors
def start(ctx: click.Context, port: int | None, heap: str | None, wait_s: float, name: str) -> None:
    """Download (once) and start the node; do nothing if it already runs or an external cluster is configured."""
    settings = settings_from(ctx)
    if settings.cluster.url:
        info = _external_info(settings)
        click.echo(f"using the external cluster at {settings.cluster.url} (Elasticsearch {info.version}); "
                   "nothing started")
        return
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
    node = _node(settings, port, name)
    state = node.status()
    if not state.running:
        click.echo(f"not running: {state.url} (start it with `hybridrank es start`)")
        ctx.exit(1)
    if state.version is None:
        click.echo(f"running (pid {state.pid}) but not answering at {state.url}")
        ctx.exit(1)
    click.echo(f"running at {state.url} (pid {state.pid}): {_node_info(node, settings).describe()}")
