"""`Open` in a group's thread: a grouped case gets its own claimable card."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.groups import open_grouped_case
from bot.slack.group_ids import ACTION_GROUP_OPEN, GroupMemberValue
from handlers.common import actor_of, first_action, refuse, tell
from handlers.deps import Deps

Ack = Callable[..., Awaitable[Any]]


async def handle_group_open(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    try:
        value = GroupMemberValue.unpack(first_action(body).get("value"))
        actor = await actor_of(deps, body)
        record = await open_grouped_case(deps.services, value.case_id, value.lead_id, actor)
        await tell(deps, body, f"Case #{record.case.id} now has its own card.")
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    finally:
        deps.wake()
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_GROUP_OPEN)
    async def _open(ack: Ack, body: dict[str, Any]) -> None:
        await handle_group_open(deps, ack, body)
