"""The report's PNG: daily volume as bars, mean first-response time as a line, the SLA target
as a dashed line. matplotlib's Agg backend draws without a display; the figure object is
built directly (no pyplot global state), so concurrent reports never share a canvas."""

from __future__ import annotations

import io

from bot.services.reports import Report


def report_chart(report: Report) -> bytes:
    """PNG bytes; raises on any drawing problem (the caller keeps the text report)."""
    days = [d.day.strftime("%m-%d") for d in report.daily]
    volume = [d.received for d in report.daily]
    frt = [None if d.frt_mean_s is None else d.frt_mean_s / 60 for d in report.daily]
    # Imported here: matplotlib costs about a second of start-up, and only reports need it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    bars = figure.add_subplot(1, 1, 1)
    positions = list(range(len(days)))
    bars.bar(positions, volume, color="#7aa6c2", label="mentions")
    bars.set_ylabel("mentions per day")
    step = max(1, len(days) // 12)
    bars.set_xticks(positions[::step], days[::step], rotation=45, fontsize=8)
    line = bars.twinx()
    points = [(x, y) for x, y in zip(positions, frt, strict=True) if y is not None]
    if points:
        line.plot([p[0] for p in points], [p[1] for p in points], color="#c2410c",
                  marker="o", markersize=3, label="mean first response (min)")
    if report.sla_target_s:
        line.axhline(report.sla_target_s / 60, color="#c2410c", linestyle="--", linewidth=1,
                     label="SLA target (min)")
    line.set_ylabel("first response (minutes)")
    line.set_ylim(bottom=0)
    handles = bars.get_legend_handles_labels()[0] + line.get_legend_handles_labels()[0]
    labels = bars.get_legend_handles_labels()[1] + line.get_legend_handles_labels()[1]
    bars.legend(handles, labels, loc="upper left", fontsize=8)
    figure.suptitle(f"mentiondesk — {report.period.label}"
                    + (f" · {report.network}" if report.network else ""))
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
