"""Modal submissions: validate into field errors, call one service, close the modal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.cases import close_case, parse_outcome
from bot.slack.ids import BLOCK_NOTE, BLOCK_OUTCOME, VIEW_CLOSE, ButtonValue
from handlers.common import actor_of, refuse
from handlers.deps import Deps

Ack = Callable[..., Awaitable[Any]]


def field_value(view: dict[str, Any], block_id: str, action_id: str = "value") -> str | None:
    """A submitted value from Slack's `state.values`, whatever the element type."""
    element = ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id)
    if not isinstance(element, dict):
        return None
    if element.get("selected_option"):
        return str(element["selected_option"].get("value"))
    value = element.get("value")
    return None if value is None else str(value)


async def handle_close_submit(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    view = body.get("view") or {}
    try:
        outcome = parse_outcome(field_value(view, BLOCK_OUTCOME))
    except ValueError as exc:
        await ack(response_action="errors", errors={BLOCK_OUTCOME: str(exc)})
        return
    try:
        value = ButtonValue.unpack(view.get("private_metadata"))
        actor = await actor_of(deps, body)
        await close_case(deps.services, value.case_id, actor, outcome,
                         field_value(view, BLOCK_NOTE))
    except Exception as exc:
        reason = await refuse(deps, body, exc)
        await ack(response_action="errors", errors={BLOCK_OUTCOME: reason})
        return
    finally:
        deps.wake()
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(VIEW_CLOSE)
    async def _close(ack: Ack, body: dict[str, Any]) -> None:
        await handle_close_submit(deps, ack, body)
