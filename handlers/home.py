"""The App Home: the agent's own open cases and the team's queue, refreshed when opened."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.queries import my_cases, team_status
from bot.slack.cards import network_label
from bot.slack.text import escape_and_truncate
from handlers.common import log
from handlers.deps import Deps


async def home_view(deps: Deps, user: str) -> dict[str, Any]:
    status = await team_status(deps.services)
    mine = await my_cases(deps.services, user)
    open_total = sum(n for s, n in status.by_state.items() if s != "closed")
    lines = [
        f"• #{r.case.id} · {network_label(r.mention.source)} · "
        f"{escape_and_truncate(r.mention.author_handle or 'unknown', 60)} · _{r.case.state}_"
        for r in mine[:20]
    ]
    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "mentiondesk"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"*Team queue:* {open_total} open · {status.by_state.get('new', 0)} unclaimed"}},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "*Your cases*\n" + ("\n".join(lines) if lines else "You hold no open cases.")}},
    ]}


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def _home(event: dict[str, Any]) -> None:
        user = event.get("user")
        if not user:
            return
        try:
            view = await home_view(deps, user)
            await deps.notifier.call("views.publish", user_id=user, view=view)
        except Exception as exc:
            log.warning("App Home not published: %s", exc.__class__.__name__)
