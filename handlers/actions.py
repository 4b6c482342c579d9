"""Button listeners on case cards: parse, call one service, report refusals, then ack.

The service's transaction commits before the acknowledgement (it takes milliseconds), so what
Slack sent is on record before Slack hears back: a crash in between cannot lose a click.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.lifecycle import Action, Actor, check_may_act
from bot.services.cases import claim_mention, load_case, release_case
from bot.slack.cards import close_modal
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE, ACTION_RELEASE, ButtonValue
from handlers.common import actor_of, first_action, refuse, tell
from handlers.deps import Deps

Ack = Callable[..., Awaitable[Any]]


async def _run(deps: Deps, body: dict[str, Any], work: Callable[[Actor, ButtonValue],
               Awaitable[Any]]) -> None:
    try:
        value = ButtonValue.unpack(first_action(body).get("value"))
        actor = await actor_of(deps, body)
        await work(actor, value)
    except Exception as exc:
        await tell(deps, body, await refuse(deps, body, exc))
    finally:
        deps.wake()


async def handle_claim(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    await _run(deps, body, lambda actor, v: claim_mention(deps.services, v.case_id, actor))
    await ack()


async def handle_release(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    await _run(deps, body, lambda actor, v: release_case(deps.services, v.case_id, actor))
    await ack()


async def handle_close(deps: Deps, ack: Ack, body: dict[str, Any]) -> None:
    """Opens the outcome modal; the state changes only when it is submitted."""

    async def work(actor: Actor, value: ButtonValue) -> None:
        record = await load_case(deps.services, value.case_id)
        check_may_act(actor, Action.CLOSE, record.case.assignee)
        await deps.notifier.open_view(body["trigger_id"], close_modal(deps.renderer, record))

    await _run(deps, body, work)
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_CLAIM)
    async def _claim(ack: Ack, body: dict[str, Any]) -> None:
        await handle_claim(deps, ack, body)

    @app.action(ACTION_RELEASE)
    async def _release(ack: Ack, body: dict[str, Any]) -> None:
        await handle_release(deps, ack, body)

    @app.action(ACTION_CLOSE)
    async def _close(ack: Ack, body: dict[str, Any]) -> None:
        await handle_close(deps, ack, body)
