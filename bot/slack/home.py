"""The App Home view: the agent's own queue, the team's queue and today's KPIs."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot.services.context import Services
from bot.services.queries import my_cases
from bot.services.reports import team_status, today_figures
from bot.slack.cards import network_label
from bot.slack.kpi_text import age, kpi_summary
from bot.slack.sla_badge import sla_badge
from bot.slack.text import escape_and_truncate

QUEUE_LIMIT = 20


async def home_view(services: Services, user: str, zone: ZoneInfo) -> dict[str, Any]:
    status = await team_status(services)
    mine = await my_cases(services, user)
    today = await today_figures(services, zone)
    now = services.clock()
    open_total = sum(status.open_by_state.values())
    lines = []
    for record in mine[:QUEUE_LIMIT]:
        case = record.case
        due = (" · " + sla_badge(case.sla_due_at, now)
               if case.sla_due_at and case.first_reply_at is None else "")
        lines.append(
            f"• #{case.id} · {network_label(record.mention.source)} · "
            f"{escape_and_truncate(record.mention.author_handle or 'unknown', 60)} · "
            f"_{case.state.replace('_', ' ')}_{due}")
    if len(mine) > QUEUE_LIMIT:
        lines.append(f"…and {len(mine) - QUEUE_LIMIT} more (`/mentions mine`)")
    oldest = (f" · oldest unclaimed #{status.oldest_unclaimed_id} waiting "
              f"{age(status.oldest_unclaimed_since, now)}"
              if status.oldest_unclaimed_id is not None else "")
    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "mentiondesk"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "*Your cases*\n" + ("\n".join(lines) if lines else "You hold no open cases.")}},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"*Team queue:* {open_total} open · {status.open_by_state.get('new', 0)} unclaimed"
            f"{oldest}\n*SLA:* {status.at_risk} at risk · {status.breached} breached"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"*Today:* {kpi_summary(today)}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Updated <!date^{int(now.timestamp())}^{{time}}|{now:%H:%M} UTC>"}]},
    ]}
