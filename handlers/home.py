"""The App Home: the agent's own queue and the team's KPIs for today, published when opened.

Opening it queues a publish through the outbox before the event is acknowledged
(bot/event_intake.py: coalesced per person, paced, and the dispatcher woken); case changes
refresh it too. So the listener has nothing left to do after Slack's 200: it is here for
Bolt to route the event to.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.deps import Deps


def register(app: AsyncApp, _deps: Deps) -> None:
    @app.event("app_home_opened")
    async def _home() -> None:
        """Recorded and queued before the ack (bot/event_intake.py)."""
