"""Thin Bolt listeners. `register` attaches them all to an AsyncApp."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.logs import case_context
from handlers import actions, commands, groups, home, replies, views
from handlers.common import case_in_payload
from handlers.deps import Deps


async def _case_in_logs(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
    """Every log line written while a click or form about a case is handled names the case
    (the listener runs in a task started inside this context)."""
    with case_context(case_in_payload(body)):
        return await next()


def register(app: AsyncApp, deps: Deps) -> None:
    app.middleware(_case_in_logs)
    actions.register(app, deps)
    views.register(app, deps)
    commands.register(app, deps)
    replies.register(app, deps)
    home.register(app, deps)
    groups.register(app, deps)
