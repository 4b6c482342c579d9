"""The App Home: the agent's own queue and the team's KPIs for today, published when opened.

Opening it queues a publish through the outbox (bot/home_delivery.py: coalesced per person,
paced); case changes refresh it too. Runs after Slack's 200 and changes no case: an open lost
to a crash costs one stale Home.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.home_delivery import request_publish
from handlers.common import log
from handlers.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def _home(event: dict[str, Any]) -> None:
        user = event.get("user")
        if not user or event.get("tab", "home") != "home":
            return
        try:
            if await request_publish(deps.services, str(user)):
                deps.wake()
        except Exception as exc:
            log.warning("App Home publish not queued: %s", exc.__class__.__name__)
