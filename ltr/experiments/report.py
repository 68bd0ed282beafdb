"""The experiment report: one self-contained HTML file (inline SVG plots, no network, no scripts).

Figures have stable ids so tests and readers can find them: ``ctr-over-time`` (CTR per variant with
its interval band), ``effects`` (A/B: relative difference of every metric with its interval),
``interleaving-outcomes`` (interleaving: wins / ties / losses). Tables: ``summary``,
``comparisons``, ``p-values``, and for interleaving ``methods`` (every credit rule's, or under
multileaving every pair's, verdict with its interval and the searches still needed) with the figure
``power-curves`` (power against searches per method, for the observed effect); the verdict is
``#verdict``; the numbers are also embedded as JSON in ``<script type="application/json" id="stats-json">``.

``experiment_report`` is what ``hybridrank ab report`` runs: the experiment's impressions from the
events index, their statistics (``ltr.experiments.stats.compute_stats``) and this file.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrank.errors import DataError, IndexNotFound
from ltr.clicks.impressions import read_impressions
from ltr.experiments.interleaving import InterleaveUnit
from ltr.experiments.metrics import METRIC_LABELS, METRICS
from ltr.experiments.randomization import RANDOMIZATION_MAX_UNITS
from ltr.experiments.results import ExperimentStats, Interval
from ltr.experiments.series import Bucket
from ltr.experiments.stats import compute_stats
from ltr.experiments.store import Experiment

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hybridrank.config import Settings

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9rem} table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:right} th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}
#verdict{font-size:1.05rem;padding:.8rem 1rem;border-left:4px solid #1f77b4;background:#f3f8fc}
#verdict.significant{border-color:#2ca02c;background:#f2faf2} .note{color:#8a4b00}
figure{margin:1rem 0} figcaption{color:#555;font-size:.85rem} svg{max-width:100%;height:auto}
.ci{color:#666;font-size:.8rem}
"""


def _num(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(iv: Interval, digits: int = 4, signed: bool = False) -> str:
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    value = "–" if not math.isfinite(iv.value) else fmt.format(iv.value)
    if not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return value
    return f'{value} <span class="ci">[{fmt.format(iv.low)}, {fmt.format(iv.high)}]</span>'


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return "&lt;0.0001" if p < 1e-4 else f"{p:.4f}"


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    return re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)


def _figure(fig_id: str, fig: Figure, caption: str) -> str:
    return f'<figure id="{fig_id}">{_svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _ctr_over_time(stats: ExperimentStats) -> str:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    for k, v in enumerate(stats.variants):
        pts = [p for p in stats.series if p.variant == v.name]
        if not pts:
            continue
        xs = date2num([p.start for p in pts])
        color = _COLORS[k % len(_COLORS)]
        ax.plot(xs, [p.ctr.value for p in pts], marker="o", markersize=3, color=color, label=v.name)
        ax.fill_between(xs, [p.ctr.low for p in pts], [p.ctr.high for p in pts], color=color, alpha=0.18,
                        linewidth=0)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylabel("credited clicks / search" if stats.experiment.mode == "interleave" else "CTR (clicks / search)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    caption = (f"CTR per {stats.bucket} and variant (mean over the users active in the {stats.bucket} of "
               f"their CTR); bands are {100 * (1 - stats.alpha):g}% t intervals over those users.")
    return _figure("ctr-over-time", fig, caption)


def _effects(stats: ExperimentStats) -> str:
    from matplotlib.figure import Figure

    comps = [c for c in stats.comparisons if math.isfinite(c.relative.value)]
    fig = Figure(figsize=(9, 0.45 * max(len(comps), 2) + 1.2))
    ax = fig.add_subplot()
    labels = []
    for y, c in enumerate(comps):
        color = "#2ca02c" if c.significant else "#7f7f7f"
        lo, hi = 100 * c.relative.low, 100 * c.relative.high
        ax.errorbar([100 * c.relative.value], [y],
                    xerr=[[100 * c.relative.value - lo if math.isfinite(lo) else 0],
                          [hi - 100 * c.relative.value if math.isfinite(hi) else 0]],
                    fmt="o", color=color, capsize=3)
        labels.append(f"{METRIC_LABELS[c.metric]}  {c.treatment} vs {c.control}")
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_yticks(range(len(comps)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("relative difference, % (treatment vs control)")
    ax.grid(axis="x", alpha=0.3)
    caption = (f"Relative difference of each metric with its {100 * (1 - stats.alpha):g}% interval; green = "
               "significant after Holm–Šidák correction across treatments.")
    return _figure("effects", fig, caption)


def _interleaving_outcomes(stats: ExperimentStats) -> str:
    from matplotlib.figure import Figure

    il = stats.interleaving
    if il is None:
        return ""
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.add_subplot()
    names = [f"{il.team_a} wins", "ties", f"{il.team_b} wins"]
    counts = [il.wins_a, il.ties, il.wins_b]
    bars = ax.bar(names, counts, color=[_COLORS[0], "#bbbbbb", _COLORS[1]])
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8)
    ax.set_ylabel("searches" if il.unit == "impression" else "users (majority outcome)")
    ax.grid(axis="y", alpha=0.3)
    caption = f"Team-draft interleaving outcomes; sign test p={_p(il.p_value).replace('&lt;', '<')}."
    return _figure("interleaving-outcomes", fig, caption)


def _power_curves(stats: ExperimentStats) -> str:
    from matplotlib.figure import Figure

    if not stats.methods:
        return ""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    for k, m in enumerate(stats.methods):
        xs = sorted(m.power_curve)
        label = m.method if len(stats.experiment.variants) == 2 else f"{m.method}: {m.treatment} vs {m.control}"
        ax.plot(xs, [m.power_curve[x] for x in xs], color=_COLORS[k % len(_COLORS)], label=label)
    ax.axhline(stats.power, color="#444", linewidth=0.8, linestyle="--")
    ax.axvline(stats.impressions, color="#888", linewidth=0.8, linestyle=":")
    ax.set(xscale="log", xlabel="searches", ylabel="power", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _figure("power-curves", fig, f"Power against searches per method for the effect observed so far "
                   f"(α={stats.alpha:g}); dashed: {100 * stats.power:g}% power, dotted: the searches logged.")


def _methods_table(stats: ExperimentStats) -> str:
    head = ["method", "comparison", "searches", "preference Δ", "p", "p (Holm)", "searches needed",
            "more needed", "verdict"]
    rows = []
    for m in stats.methods:
        cells = [html.escape(m.method), html.escape(f"{m.treatment} vs {m.control}"), f"{m.searches:,}",
                 _ci(m.effect, 3, True), _p(m.p_value), _p(m.p_adjusted),
                 "–" if m.sessions_needed is None else f"{m.sessions_needed:,}",
                 "–" if m.more_sessions_needed is None else f"{m.more_sessions_needed:,}", html.escape(m.verdict)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    tests = "".join(f"<li>{html.escape(m.method)}: {html.escape(m.test)}</li>"
                    for m in {m.method: m for m in stats.methods}.values())
    return ('<table id="methods"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + f'</tbody></table><ul class="meta">{tests}</ul>')


def _summary_table(stats: ExperimentStats) -> str:
    credited = stats.experiment.mode == "interleave"
    head = ["variant", "ranker", "users", "searches", "credited clicks" if credited else "clicks"]
    head += [METRIC_LABELS[m] for m in METRICS]
    rows = []
    for v in stats.variants:
        cells = [html.escape(v.name), html.escape(v.ranker), f"{v.units:,}", f"{v.impressions:,}", f"{v.clicks:,}"]
        cells += [_ci(v.metrics[m]) for m in METRICS]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ('<table id="summary"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _comparisons_table(stats: ExperimentStats) -> str:
    head = ["metric", "comparison", "Δ (abs)", "Δ (rel)", "Cohen's d", "Cohen's h", "p", "p (Holm–Šidák)",
            "users needed / variant"]
    rows = []
    for c in stats.comparisons:
        rel = Interval(100 * c.relative.value, 100 * c.relative.low, 100 * c.relative.high)
        cells = [METRIC_LABELS[c.metric] + (" (primary)" if c.metric == stats.primary else ""),
                 html.escape(f"{c.treatment} vs {c.control}"), _ci(c.diff, signed=True), _ci(rel, 1, True) + " %",
                 _num(c.cohens_d, 3), _num(c.cohens_h, 3), _p(c.p_value), _p(c.p_adjusted),
                 "–" if c.units_needed is None else f"{c.units_needed:,}"]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return ('<table id="comparisons"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _p_values(stats: ExperimentStats) -> str:
    rows: list[tuple[str, str, float | None]] = []
    if stats.interleaving is not None:
        il = stats.interleaving
        rows.append((f"interleaving preference {il.team_b} vs {il.team_a}", "two-sided sign test (binomial, mid-p)",
                     il.p_value))
    for c in stats.comparisons:
        if c.metric == stats.primary:
            rows.append((f"{METRIC_LABELS[c.metric]} {c.treatment} vs {c.control}",
                         "randomisation test of Welch's t on per-user values (Holm–Šidák-adjusted)",
                         c.p_adjusted))
    if stats.srm_p is not None:
        rows.append(("sample-ratio mismatch", "chi-square of users per variant vs shares", stats.srm_p))
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{_p(p)}</td></tr>"
                   for a, b, p in rows)
    return ('<table id="p-values"><thead><tr><th>test</th><th>method</th><th>p</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _interleaving_table(stats: ExperimentStats) -> str:
    il = stats.interleaving
    if il is None:
        return ""
    unit = "searches" if il.unit == "impression" else "users (majority of their searches)"
    rows = [("outcomes counted", f"{il.outcomes:,} {unit}"), (f"{il.team_a} wins", f"{il.wins_a:,}"),
            ("ties", f"{il.ties:,}"), (f"{il.team_b} wins", f"{il.wins_b:,}"),
            (f"preference for {il.team_b} Δ", _ci(il.preference, 3, True)),
            (f"{il.team_b} win rate (decisive)", _num(il.win_rate_b, 3)), ("p (sign test)", _p(il.p_value)),
            (f"{unit.split()[0]} needed for {100 * stats.power:g}% power",
             "–" if il.sessions_needed is None else f"{il.sessions_needed:,}")]
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{b}</td></tr>" for a, b in rows)
    return f'<table id="interleaving"><tbody>{body}</tbody></table>'


def render_report(stats: ExperimentStats, path: str | Path) -> Path:
    """Write the report of ``stats`` to ``path`` (one HTML file, no external resources)."""
    from matplotlib import rc_context

    exp = stats.experiment
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.fonttype": "path", "font.size": 9}):
        figures = [_ctr_over_time(stats)]
        figures.append(_interleaving_outcomes(stats) if exp.mode == "interleave" else _effects(stats))
        figures.append(_power_curves(stats))
    variants = ", ".join(f"{html.escape(v.name)} = {html.escape(v.ranker)}"
                         + (f" ({100 * v.share:g}%)" if exp.mode == "ab" else "") for v in exp.variants)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in stats.notes)
    mode = ("bucketed A/B (by salted hash of the user)" if exp.mode == "ab" else "team-draft interleaving"
            if len(exp.variants) == 2 else f"team-draft multileaving of {len(exp.variants)} variants")
    method = (
        "The user is the randomisation unit, so every metric is first averaged over each user's searches and "
        "variants are compared on those per-user values (Welch's t, its p-value from re-assigning the users "
        f"to the arms up to {RANDOMIZATION_MAX_UNITS:,} users and the t distribution above, t intervals; the "
        "relative difference "
        "by the delta method): a heavy user's many "
        "searches do not count as independent evidence, and the randomisation p-value keeps the A/A "
        "false-positive rate at the nominal level. Several treatments: p-values are Holm–Šidák "
        f"adjusted. Power: users per variant for {100 * stats.power:g}% power at α={stats.alpha:g} for the "
        "observed effect (Cohen's d on the per-user scale)." if exp.mode == "ab" else
        "Each search is won by the team (A = first variant, B = second) whose documents got more clicks; "
        "the sign test compares B wins with A wins (ties carry no preference). Team-draft's per-search coin "
        "makes searches independent under the null; the interval of Δ is clustered by user. Team rows in "
        "the table count only clicks on that team's documents (per-user means)."
    )
    data = json.dumps(stats.to_json(), sort_keys=True).replace("</", "<\\/")
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Experiment {html.escape(exp.id)} — hybridrank</title>
<style>{_CSS}</style></head>
<body>
<h1>Experiment {html.escape(exp.id)}</h1>
<p class="meta">index <b>{html.escape(exp.index)}</b> · {mode} · status <b>{html.escape(exp.status)}</b> ·
variants {variants}<br>
traffic {stats.first_seen.astimezone(UTC):%Y-%m-%d %H:%M} – {stats.last_seen.astimezone(UTC):%Y-%m-%d %H:%M} UTC ·
{stats.impressions:,} searches by {stats.units:,} users · report generated
{datetime.now(UTC):%Y-%m-%d %H:%M} UTC{" · " + html.escape(exp.description) if exp.description else ""}</p>
<div id="verdict" class="{"significant" if stats.significant else ""}">{html.escape(stats.verdict)}</div>
{notes}
<h2>Variants</h2>
{_summary_table(stats)}
{"<h2>Interleaving</h2>" + _interleaving_table(stats) if stats.interleaving else ""}
{"<h2>Methods</h2>" + _methods_table(stats) if stats.methods else ""}
{"<h2>Comparisons with the control</h2>" + _comparisons_table(stats) if stats.comparisons else ""}
<h2>Tests</h2>
{_p_values(stats)}
<h2>Plots</h2>
{"".join(figures)}
<h2>Method</h2>
<p class="meta">{html.escape(method)}</p>
<script type="application/json" id="stats-json">{data}</script>
</body></html>
"""
    out.write_text(body, encoding="utf-8")
    return out


def experiment_report(settings: Settings, experiment: Experiment, *, primary: str = "ctr",
                      interleave_unit: InterleaveUnit = "impression", bucket: Bucket | None = None,
                      html_path: Path | None = None) -> tuple[ExperimentStats, Path]:
    """The statistics of ``experiment`` from the events index, and the report written to ``html_path``
    (default ``<home>/reports/<experiment>.html``). ``DataError`` while it has no traffic."""
    from connector.client import make_client

    events_index = settings.feedback.events_index
    client = make_client(settings)
    try:
        impressions, _orphans = read_impressions(client, events_index, experiment=experiment.id)
    except IndexNotFound as exc:
        raise DataError(f"experiment {experiment.id!r} has no traffic yet: the events index "
                        f"{events_index!r} does not exist") from exc
    finally:
        client.close()
    stats = compute_stats(impressions, experiment, primary=primary, interleave_unit=interleave_unit, bucket=bucket)
    out = render_report(stats, html_path or Path(settings.home).expanduser() / "reports" / f"{experiment.id}.html")
    return stats, out
