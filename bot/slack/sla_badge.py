"""The card's SLA line: time left before the first-response target is breached."""

from __future__ import annotations

from datetime import datetime

from bot.domain.sla import format_duration


def sla_badge(due_at: datetime, now: datetime | None) -> str:
    """`⏳ 42 min left` (with Slack's local-time rendering of the due time), or `breached`.

    Without `now` only the due time is shown; the card is re-rendered when the nudge and the
    escalation fire, so the text moves on at the moments that matter.
    """
    due = f"<!date^{int(due_at.timestamp())}^{{time}}|{due_at.strftime('%H:%M UTC')}>"
    if now is None:
        return f":hourglass_flowing_sand: first reply due by {due}"
    left = due_at - now
    if left.total_seconds() <= 0:
        return f":rotating_light: SLA breached {format_duration(-left)} ago (due {due})"
    return f":hourglass_flowing_sand: {format_duration(left)} left to reply (due {due})"
