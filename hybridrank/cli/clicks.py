"""``hybridrank clicks aggregate``: fit the position model on logged events, write the CTR statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, parse_request_time, settings_from

if TYPE_CHECKING:
    pass


@click.group()
def clicks() -> None:
    """Click statistics from the events index (position-debiased, smoothed CTR)."""


@clicks.command()
@click.option("--index", "index_name", required=True, help="The searched index whose events to aggregate.")
@click.option("--since", callback=parse_request_time, default=None, help="Only events at or after (ISO-8601).")
@click.option("--until", callback=parse_request_time, default=None, help="Only events before (ISO-8601).")
@click.option("--window-days", type=click.FloatRange(0), default=None,
              help="Only events this many days before --as-of (default: feedback.ctr_window_days; 0 = all).")
@click.option("--as-of", callback=parse_request_time, default=None,
              help="The moment the window ends at (ISO-8601; default: now).")
@click.option("--max-iter", type=click.IntRange(1), default=2000, show_default=True, help="EM iterations at most.")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write <clicks dir>/<index>-examination.png (fitted vs DESIGN.md's examination).")
@click.pass_context
@handle_errors
def aggregate(ctx: click.Context, index_name: str, since: datetime | None, until: datetime | None,
              window_days: float | None, as_of: datetime | None, max_iter: int, plot: bool) -> None:
    """Fit the position-based click model and write debiased, smoothed CTR per (query, doc)."""
    from rich.console import Console
    from rich.table import Table

    from ltr.clicks.click_model import (
        aggregate_clicks,
        click_stats_path,
        load_clicked_impressions,
        resolve_window,
        save_click_stats,
    )
    from ltr.clicks.pbm import DESIGN_EXAMINATION, plot_examination

    settings = settings_from(ctx)
    console = Console()
    moment = as_of or datetime.now(UTC)  # the CLI may read the clock; the statistics never do
    days = settings.feedback.ctr_window_days if window_days is None else window_days
    start, end = resolve_window(as_of=moment, window_days=days, since=since, until=until)
    impressions, orphans = load_clicked_impressions(settings, index_name, since=start, until=end)
    stats, model = aggregate_clicks(impressions, prior_weight=settings.feedback.ctr_prior_weight, as_of=moment,
                                    since=start, until=end, index=index_name, max_iter=max_iter)
    stats.info["orphan_clicks"] = orphans
    saved_to = save_click_stats(settings, index_name, stats)
    path = click_stats_path(settings, index_name)  # beside it: the examination plot
    console.print(f"{len(impressions)} impressions ({model.observations} shown documents), {stats.clicks} clicks, "
                  f"{orphans} orphan clicks (no matching impression); {len(stats.pairs)} (query, doc) pairs, "
                  f"{len(stats.docs)} documents")
    console.print(f"window: {start.isoformat() if start else 'start'} .. {end.isoformat() if end else 'end'}; "
                  f"global debiased CTR p0 = {stats.prior_ctr:.4f}, prior weight m = {stats.prior_weight:g}")
    console.print(f"EM: {model.iterations} iterations ({'converged' if model.converged else 'not converged'}), "
                  f"log-likelihood {model.log_likelihood:.1f}; {100 * model.varied_pairs:.1f}% of pairs seen at "
                  "2+ positions" + ("" if model.varied_pairs >= 0.05 else
                                    " -- too little position variation for a trustworthy examination curve"))
    table = Table(title=f"examination probability (relative to rank {model.anchor_position})")
    table.add_column("position", justify="right")
    table.add_column("fitted", justify="right")
    table.add_column("DESIGN.md / .68", justify="right")
    for pos in sorted(model.examination)[:20]:
        true = f"{DESIGN_EXAMINATION[pos - 1] / DESIGN_EXAMINATION[0]:.3f}" if pos <= len(DESIGN_EXAMINATION) else ""
        table.add_row(str(pos), f"{model.examination[pos]:.3f}", true)
    console.print(table)
    if plot:
        png = path.with_name(f"{index_name}-examination.png")
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_examination(model, png, title=f"{index_name}: examination by position")
        console.print(f"plot: {png}")
    console.print(f"click statistics written to {saved_to}")
