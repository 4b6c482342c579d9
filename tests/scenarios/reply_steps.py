"""Steps of the reply loop that several scenario modules take, each through the real stack."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.sandbox.payloads import interaction_base
from bot.sandbox.state import StoredMessage, StoredView
from bot.services.effects import Effect
from bot.slack.ids import ACTION_CLAIM, ACTION_DRAFT, ACTION_DRAFT_INPUT, ACTION_TEMPLATE_PICK
from db.models import DraftRow, OutboxRow
from tests.scenarios.test_claim_flow import button, mention
from tests.stack import ANN, APPROVALS, MENTIONS, Stack


def forum_mention(external_id: str = "109876", **overrides: Any) -> dict[str, Any]:
    """A mention from a custom channel: it arrives through the stack's generic source."""
    body = mention(external_id)
    body["source"] = "forum"
    body.update(overrides)
    return body


async def ingest(stack: Stack, *bodies: dict[str, Any]) -> None:
    status, answer = await stack.post_webhook(json.dumps(list(bodies)).encode())
    assert status == 200, answer
    await stack.drain()


def card_of(stack: Stack, case_id: int) -> StoredMessage:
    return stack.cards()[case_id - 1]


async def claim(stack: Stack, case_id: int = 1, agent: str = ANN) -> StoredMessage:
    card = card_of(stack, case_id)
    await stack.emulator.click(agent, MENTIONS, card.ts, ACTION_CLAIM,
                               button(card, "Claim")["value"])
    await stack.drain()
    return card_of(stack, case_id)


async def open_draft(stack: Stack, case_id: int = 1, agent: str = ANN,
                     template: str = "apology_outage") -> StoredView:
    """Click `Draft reply`, pick `template` and wait for the modal rebuilt for it."""
    card = card_of(stack, case_id)
    await stack.emulator.click(agent, MENTIONS, card.ts, ACTION_DRAFT,
                               button(card, "Draft reply")["value"])
    view = stack.emulator.open_views(agent)[-1]
    updates = len(stack.emulator.calls_to("views.update"))
    await stack.emulator.select_in_view(agent, view.id, ACTION_TEMPLATE_PICK, template)
    await stack.emulator.wait_for_call("views.update", updates + 1)
    return stack.emulator.open_views(agent)[-1]


async def draft_and_submit(stack: Stack, case_id: int = 1, agent: str = ANN,
                           eta: str = "by 6 pm", final_text: str | None = None) -> Any:
    view = await open_draft(stack, case_id, agent)
    values: dict[str, Any] = {"var__eta": {ACTION_DRAFT_INPUT: eta}}
    if final_text is not None:
        values["text"] = {ACTION_DRAFT_INPUT: final_text}
    return await stack.emulator.submit_view(agent, view.id, values)


def approval_requests(stack: Stack, channel: str = APPROVALS) -> list[StoredMessage]:
    return stack.emulator.messages(channel)


async def drafts(stack: Stack, case_id: int = 1) -> list[DraftRow]:
    """Every draft of the case, oldest first, as the services wrote them."""
    async with stack.components.db.transaction() as tx:
        rows = await tx.session.execute(
            select(DraftRow).where(DraftRow.case_id == case_id).order_by(DraftRow.id))
        return list(rows.scalars())


async def reply_rows(stack: Stack) -> list[OutboxRow]:
    """Replies queued for the network (whatever their status)."""
    async with stack.components.db.transaction() as tx:
        rows = await tx.session.execute(
            select(OutboxRow).where(OutboxRow.kind == Effect.REPLY_POST))
        return list(rows.scalars())


async def forged_click(stack: Stack, user: str, channel: str, message_ts: str, action_id: str,
                       value: str) -> None:
    """A signed block_actions for a button the message does not (or no longer) show, as a
    stale Slack client or a hand-made request sends it."""
    ws = stack.emulator.workspace
    payload = interaction_base(ws, kind="block_actions", user=ws.users[user],
                               token=stack.emulator.verification_token,
                               trigger_id=ws.issue_trigger(user).id)
    payload["container"] = {"type": "message", "message_ts": message_ts,
                            "channel_id": channel, "is_ephemeral": False}
    payload["channel"] = {"id": channel, "name": ws.channel_name(channel)}
    payload["actions"] = [{"action_id": action_id, "block_id": "stale", "type": "button",
                           "value": value, "action_ts": ws.ids.ts(),
                           "text": {"type": "plain_text", "text": "stale"}}]
    response = await stack.emulator.sender.post_form({"payload": json.dumps(payload)})
    assert response.status == 200
