"""``hybridrank events flush``: ship the endpoint's spooled events now (the work: ``connector.events.spool``)."""

from __future__ import annotations

import click

from hybridrank.cli.support import handle_errors, settings_from


@click.group()
def events() -> None:
    """The endpoint's event spool (impressions and clicks waiting for Elasticsearch)."""


@events.command("flush")
@click.option("--upstream", "upstream_url", default=None, help="Elasticsearch URL (default: the configured cluster).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for another shipper of this spool (a running endpoint's flusher) to finish.")
@click.pass_context
@handle_errors
def events_flush(ctx: click.Context, upstream_url: str | None, wait_s: float) -> None:
    """Ship every spooled event to the events index now (safe beside a running endpoint)."""
    from connector.events.spool import EventLog
    from hybridrank.errors import ClusterUnavailable

    settings = settings_from(ctx)
    log = EventLog.from_settings(settings, url=upstream_url)
    try:
        result = log.flush_once(wait_s=wait_s)
    finally:
        log.close()
    click.echo(f"stored {result.stored}, duplicates {result.duplicates}, rejected {result.rejected}, "
               f"still spooled {result.retained} ({settings.spool_dir} -> {settings.feedback.events_index})")
    if result.error:
        raise ClusterUnavailable(f"events kept in the spool: {result.error}")
