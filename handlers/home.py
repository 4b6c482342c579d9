"""The App Home: the agent's own queue and the team's KPIs for today, published when opened.

Case changes refresh it too (bot/home_delivery.py, debounced through the outbox).
Runs after Slack's 200 and changes no state: an open lost to a crash costs one stale Home.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.home import home_view
from handlers.common import log
from handlers.deps import Deps
from handlers.reports import sla_config


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def _home(event: dict[str, Any]) -> None:
        user = event.get("user")
        if not user or event.get("tab", "home") != "home":
            return
        try:
            view = await home_view(deps.services, user, sla_config(deps).timezone)
            await deps.notifier.call("views.publish", user_id=user, view=view)
        except Exception as exc:
            log.warning("App Home not published: %s", exc.__class__.__name__)
