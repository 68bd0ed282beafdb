"""``hybridrank serve``: run the Elasticsearch-compatible endpoint on uvicorn."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import click

from hybridrank.cli.support import handle_errors, settings_from

# LogRecord attributes that are not ``extra=`` fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every ``extra=`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the endpoint and uvicorn (called by the command, never at import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("hybridrank", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def _check_listen(host: str, port: int) -> None:
    """A plain error now if HOST:PORT cannot be listened on, instead of uvicorn's log line after the
    warm-up (models, embedder) has run and the endpoint has already said it is ready."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.BadParameter(f"cannot resolve {host!r}: {exc}", param_hint="--host") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                   "(another process holds it? choose another --port)") from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9280, show_default=True, help="Port to listen on.")
@click.option("--upstream", "upstream_url", default=None,
              help="Elasticsearch URL to relay to (default: the configured cluster).")
@click.option("--connect-timeout", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds to wait for the upstream to accept a connection before answering 503.")
@click.option("--torch-threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Intra-op torch threads (query embedding when embedding.query_runtime is 'torch').")
@click.option("--embed-concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Query embeddings computed at the same time.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--http", "http_impl", type=click.Choice(["auto", "httptools", "h11"]), default="auto",
              show_default=True, help="HTTP parser (auto: httptools, C, when installed; h11 is pure Python).")
@click.option("--loop", "loop_impl", type=click.Choice(["auto", "uvloop", "asyncio"]), default="auto",
              show_default=True, help="Event loop (auto: uvloop when installed).")
@click.pass_context
@handle_errors
def serve(ctx: click.Context, host: str, port: int, upstream_url: str | None, connect_timeout: float,
          torch_threads: int, embed_concurrency: int, log_level: str, http_impl: str, loop_impl: str) -> None:
    """Serve the Elasticsearch REST API: rerank searches on profiled indices, relay everything else.

    Point an app's Elasticsearch client at http://HOST:PORT instead of the cluster; indices named
    in the config's [indices.*] tables are answered with hybrid retrieval + the serving model.
    """
    import uvicorn

    from connector.endpoint.app import create_app

    settings = settings_from(ctx)
    _check_listen(host, port)
    configure_logging(log_level)
    app = create_app(settings, upstream_url=upstream_url, connect_timeout_s=connect_timeout,
                     torch_threads=torch_threads, embed_concurrency=embed_concurrency)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, log_config=None,
                http=http_impl, loop=loop_impl)
