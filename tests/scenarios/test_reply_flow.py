"""The reply loop over real HTTP: claim → draft → approval → lead approves → one reply → close."""

from __future__ import annotations

import json
from pathlib import Path

from bot.slack.ids import (
    ACTION_APPROVE,
    ACTION_CLAIM,
    ACTION_CLOSE,
    ACTION_DRAFT,
    ACTION_DRAFT_INPUT,
    ACTION_REJECT,
    ACTION_TEMPLATE_PICK,
)
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.test_claim_flow import audit, button, case_row, labels, mention
from tests.stack import ANN, APPROVALS, BOB, LEAD, MENTIONS, Stack, start_stack


async def claimed_case(stack: Stack) -> object:
    body = mention()
    body["source"] = "forum"
    status, _ = await stack.post_webhook(json.dumps(body).encode())
    assert status == 200
    await stack.drain()
    card = stack.cards()[0]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, button(card, "Claim")["value"])
    await stack.drain()
    return stack.cards()[0]


async def submit_draft(stack: Stack, card: object, eta: str = "by 6 pm") -> object:
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_DRAFT,  # type: ignore[attr-defined]
                               button(card, "Draft reply")["value"])
    view = stack.emulator.open_views(ANN)[-1]
    updates = len(stack.emulator.calls_to("views.update"))
    await stack.emulator.select_in_view(ANN, view.id, ACTION_TEMPLATE_PICK, "apology_outage")
    # The pick is acked first and the modal rebuilt afterwards, as Slack expects.
    await stack.emulator.wait_for_call("views.update", updates + 1)
    view = stack.emulator.open_views(ANN)[-1]
    block_ids = [b.get("block_id") for b in view.blocks]
    assert "var__eta" in block_ids and "var__channel" in block_ids
    return await stack.emulator.submit_view(ANN, view.id, {"var__eta": {ACTION_DRAFT_INPUT: eta}})


async def test_full_reply_loop(rstack: Stack, sink: ReplySink) -> None:
    stack = rstack
    card = await claimed_case(stack)
    response = await submit_draft(stack, card)
    assert response.status == 200 and not response.text.strip()
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    await stack.drain()
    approvals = stack.emulator.messages(APPROVALS)
    assert len(approvals) == 1
    request = approvals[0]
    assert "We expect it to be fixed by 6 pm" in json.dumps(request.blocks)
    assert labels(request) == ["Approve", "Edit & approve", "Reject"]
    value = button(request, "Approve")["value"]

    # A non-lead's approval is refused and changes nothing.
    await stack.emulator.click(BOB, APPROVALS, request.ts, ACTION_APPROVE, value)
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    assert "Only a lead" in stack.emulator.ephemerals(APPROVALS, BOB)[-1].text

    # The lead approves twice (a double click): one reply reaches the network.
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE, value)
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE, value)
    await stack.drain()
    assert len(sink.received) == 1
    sent = sink.received[0]
    assert sent["case_id"] == 1 and sent["source"] == "forum"
    assert sent["external_id"] == "109876" and "by 6 pm" in sent["text"]
    case = await case_row(stack, 1)
    assert (case.state, case.reply_ref, case.reply_url) == (
        "replied", "r1", "https://forum.example/r/1")
    assert case.first_reply_at is not None
    card = stack.cards()[0]
    assert "Our reply" in json.dumps(card.blocks)
    assert "Approved by <@U0LEAD1>" in json.dumps(stack.emulator.messages(APPROVALS)[0].blocks)

    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLOSE, button(card, "Close")["value"])
    view = stack.emulator.open_views(ANN)[-1]
    await stack.emulator.submit_view(ANN, view.id, {"outcome": {"value": "resolved"}})
    assert (await case_row(stack, 1)).state == "closed"
    actions = [e.action for e in await audit(stack, 1)]
    assert actions == ["ingest", "claim", "submit_draft", "approve", "mark_replied", "close"]
    assert stack.emulator.violations == []


async def test_reject_sends_reason_to_agent(rstack: Stack, sink: ReplySink) -> None:
    stack = rstack
    card = await claimed_case(stack)
    await submit_draft(stack, card)
    await stack.drain()
    request = stack.emulator.messages(APPROVALS)[0]
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_REJECT,
                               button(request, "Reject")["value"])
    view = stack.emulator.open_views(LEAD)[-1]
    await stack.emulator.submit_view(LEAD, view.id, {"reason": {"value": "Too vague <!here>"}})
    await stack.drain()
    case = await case_row(stack, 1)
    assert case.state == "claimed"
    thread = stack.emulator.replies(MENTIONS, stack.cards()[0].ts)
    notes = [m.text for m in thread if "rejected" in (m.text or "")]
    assert notes and "Too vague &lt;!here&gt;" in notes[0]
    assert notes[0].startswith(f"<@{ANN}> ")  # the agent is mentioned, so Slack notifies them
    assert sink.received == []


async def test_over_long_reply_is_a_field_error_and_saves_nothing(rstack: Stack) -> None:
    stack = rstack
    card = await claimed_case(stack)
    response = await submit_draft(stack, card, eta="x" * 480)
    assert json.loads(response.text)["response_action"] == "errors"
    assert (await case_row(stack, 1)).state == "claimed"


async def test_refused_reply_shows_on_card_and_is_not_retried(rstack: Stack, sink: ReplySink
                                                              ) -> None:
    stack = rstack
    sink.answer_status = 422
    card = await claimed_case(stack)
    await submit_draft(stack, card)
    await stack.drain()
    request = stack.emulator.messages(APPROVALS)[0]
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE,
                               button(request, "Approve")["value"])
    await stack.drain()
    case = await case_row(stack, 1)
    assert case.state == "approved" and case.reply_error
    assert "refused by the forum" in json.dumps(stack.cards()[0].blocks)
    assert "Retry" in labels(stack.cards()[0])


async def test_crash_between_approval_and_delivery_posts_once(
    database_url: str, tmp_path: Path, sink: ReplySink
) -> None:
    """Approve, stop before the dispatcher runs; a new process delivers exactly one reply."""
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as stack:
        card = await claimed_case(stack)
        await submit_draft(stack, card)
        await stack.drain()
        request = stack.emulator.messages(APPROVALS)[0]
        await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE,
                                   button(request, "Approve")["value"])
        assert sink.received == []  # the process "dies" here, reply still in the outbox
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as restarted:
        await restarted.drain()
        await restarted.drain()
        assert len(sink.received) == 1
        assert sink.keys == ["mentiondesk-reply-1"]
        assert (await case_row(restarted, 1)).state == "replied"
