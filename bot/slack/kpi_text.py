"""Reports and status as text: Slack mrkdwn (user text escaped) or plain text for the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.lifecycle import State
from bot.domain.sla import format_duration
from bot.services.reports import Figures, GroupFigures, Report, TeamStatus
from bot.slack.cards import network_label
from bot.slack.text import escape_and_truncate


def _dur(seconds: float | None) -> str:
    return "n/a" if seconds is None else format_duration(timedelta(seconds=round(seconds)))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _delta_pct(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    points = (now - before) * 100
    return f" ({points:+.0f} pts)" if round(points) else " (=)"


def _delta_count(now: int, before: int) -> str:
    if not before:
        return ""
    return f" ({(now - before) / before * 100:+.0f}%)"


def _delta_dur(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    diff = now - before
    if abs(diff) < 60:
        return " (=)"
    sign = "+" if diff > 0 else "-"
    return f" ({sign}{_dur(abs(diff))})"


def _b(text: str, md: bool) -> str:
    return f"*{text}*" if md else text


def _who(name: str, md: bool) -> str:
    if name == "unassigned" or not md:
        return name
    return f"<@{escape_and_truncate(name, 32)}>"


def _group_line(g: GroupFigures, label: str) -> str:
    return (f"• {label}: {g.received} received, {g.replied} replied "
            f"({_pct(g.response_rate)}), mean first response {_dur(g.frt_mean_s)}, "
            f"within SLA {_pct(g.within_sla)}")


def report_text(report: Report, *, md: bool = True) -> str:
    """The whole report; an empty period says so in one line."""
    scope = report.period.label
    if report.network:
        scope += f" · {network_label(report.network)}"
    tz = str(report.period.zone)
    if report.empty:
        return (f"No mentions were published in the period ({scope}, "
                f"{_span(report)} {tz}).")
    c, p = report.current, report.previous
    lines = [
        f"{_b('Report', md)} — {scope} ({_span(report)} {tz}); "
        f"compared with the same length before",
        f"{_b('Volume:', md)} {c.received} received{_delta_count(c.received, p.received)}, "
        f"{c.spam} spam, "
        + (f"{c.duplicates} grouped as copies, " if c.duplicates else "")
        + f"{c.replied} replied, {c.closed} closed",
        f"{_b('Response rate:', md)} {_pct(c.response_rate)}"
        f"{_delta_pct(c.response_rate, p.response_rate)}",
        f"{_b('First response:', md)} median {_dur(c.frt_median_s)}"
        f"{_delta_dur(c.frt_median_s, p.frt_median_s)}, 90th percentile {_dur(c.frt_p90_s)}"
        f"{_delta_dur(c.frt_p90_s, p.frt_p90_s)}",
        f"{_b('Resolution:', md)} median {_dur(c.resolution_median_s)}"
        f"{_delta_dur(c.resolution_median_s, p.resolution_median_s)}",
        f"{_b('Within SLA:', md)} {_pct(c.within_sla)}{_delta_pct(c.within_sla, p.within_sla)}"
        f" ({c.sla_met} of {c.sla_counted})",
        f"{_b('Ingest lag:', md)} median {_dur(c.lag_median_s)} (published → in Slack)",
    ]
    if report.outcomes:
        lines.append(f"{_b('Outcomes:', md)} " + ", ".join(
            f"{escape_and_truncate(k, 32)} {v}" for k, v in report.outcomes.items()))
    if report.sentiment is None:
        lines.append(f"{_b('Sentiment:', md)} n/a")
    else:
        total = sum(report.sentiment.values()) or 1
        lines.append(f"{_b('Sentiment:', md)} " + ", ".join(
            f"{escape_and_truncate(k, 32)} {v * 100 // total}%"
            for k, v in sorted(report.sentiment.items(), key=lambda kv: -kv[1])))
    lines.append(_b("Per agent", md))
    lines += [_group_line(g, _who(g.name, md)) for g in report.by_agent]
    lines.append(_b("Per network", md))
    lines += [_group_line(g, network_label(escape_and_truncate(g.name, 64)))
              for g in report.by_network]
    return "\n".join(lines)


def _span(report: Report) -> str:
    zone = report.period.zone
    start = report.period.start.astimezone(zone)
    end = report.period.end.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"


def kpi_summary(figures: Figures) -> str:
    """One line for the App Home."""
    return (f"{figures.received} received · response rate {_pct(figures.response_rate)} · "
            f"median first response {_dur(figures.frt_median_s)} · "
            f"within SLA {_pct(figures.within_sla)}")


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "-"
    return format_duration(max(timedelta(0), now - since))


def status_text(status: TeamStatus) -> str:
    states = " · ".join(
        f"{s.value.replace('_', ' ')} *{status.open_by_state.get(s.value, 0)}*"
        for s in State if s != State.CLOSED
    )
    lines = [f"*Open cases:* {states}"]
    if status.grouped:
        noun = "mention waits" if status.grouped == 1 else "mentions wait"
        lines[0] += f" · _{status.grouped} similar {noun} on their lead's card_"
    if status.oldest_unclaimed_id is not None:
        lines.append(f"*Oldest unclaimed:* #{status.oldest_unclaimed_id}, waiting "
                     f"{age(status.oldest_unclaimed_since, status.now)}")
    else:
        lines.append("*Oldest unclaimed:* none — the queue is clear")
    lines.append(f"*SLA:* {status.at_risk} at risk · {status.breached} breached")
    if status.load:
        load = ", ".join(f"<@{escape_and_truncate(u, 32)}> {n}"
                         for u, n in sorted(status.load.items()))
        lines.append(f"*Load:* {load}")
    else:
        lines.append("*Load:* nobody holds a case")
    parked = status.outbox.get("parked", 0)
    pending = status.outbox.get("pending", 0) + status.outbox.get("leased", 0)
    lines.append(f"*Outbox:* {pending} waiting, {parked} failed")
    for src in status.sources:
        name = escape_and_truncate(src.source, 64)
        if src.failures:
            error = escape_and_truncate(src.last_error or "", 200)
            lines.append(f"*Source {name}:* failing ({src.failures}×) — {error}")
        else:
            seen = age(src.last_success_at, status.now)
            lines.append(f"*Source {name}:* healthy, last success {seen} ago")
    return "\n".join(lines)
