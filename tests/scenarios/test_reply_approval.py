"""Lead decisions over real HTTP: edit & approve, leads from a user group, stale drafts, the
approval request in the card's thread."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.slack.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_EDIT,
    ACTION_CLAIM,
    ACTION_CLOSE,
    ACTION_DRAFT_INPUT,
    ACTION_REJECT,
)
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.reply_steps import (
    approval_requests,
    card_of,
    claim,
    draft_and_submit,
    drafts,
    forged_click,
    forum_mention,
    ingest,
    reply_rows,
)
from tests.scenarios.test_claim_flow import audit, button, case_row, labels
from tests.stack import ANN, APPROVALS, BOB, LEAD, MENTIONS, Stack, start_stack

LEAD2 = "U0LEAD2"
GROUP = "S0LEADS"


@pytest.fixture
async def gstack(database_url: str, tmp_path: Path, sink: ReplySink) -> AsyncIterator[Stack]:
    """Leads are U0LEAD1 (configured) and the members of the user group S0LEADS."""
    async with start_stack(database_url, tmp_path, reply_url=sink.url, lead_usergroup=GROUP,
                           usergroup_cache_seconds=60) as running:
        running.emulator.add_user(LEAD2, "gail", real_name="Gail Lead")
        running.emulator.add_usergroup(GROUP, [LEAD2])
        yield running


async def awaiting_approval(stack: Stack) -> None:
    await ingest(stack, forum_mention())
    await claim(stack)
    response = await draft_and_submit(stack)
    assert response.status == 200 and not response.text.strip()
    await stack.drain()


def group_lookups(stack: Stack) -> int:
    return len(stack.emulator.calls_to("usergroups.users.list"))


async def test_lead_edits_before_approving_and_the_edit_is_published(
    rstack: Stack, sink: ReplySink
) -> None:
    stack = rstack
    await awaiting_approval(stack)
    request = approval_requests(stack)[0]
    assert labels(request) == ["Approve", "Edit & approve", "Reject"]
    value = button(request, "Edit & approve")["value"]
    original = (await drafts(stack))[0].text

    # An agent may not even open the editor.
    await stack.emulator.click(BOB, APPROVALS, request.ts, ACTION_APPROVE_EDIT, value)
    assert "Only a lead" in stack.emulator.ephemerals(APPROVALS, BOB)[-1].text
    assert stack.emulator.open_views(BOB) == []

    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE_EDIT, value)
    view = stack.emulator.open_views(LEAD)[-1]
    text_input = next(b for b in view.blocks if b.get("block_id") == "text")["element"]
    assert (text_input["type"], text_input["multiline"]) == ("plain_text_input", True)
    assert text_input["initial_value"] == original
    assert "/500 characters" in json.dumps(view.blocks)

    # Over the source's 500-character limit: the live count warns, submitting is refused.
    updates = len(stack.emulator.calls_to("views.update"))
    assert await stack.emulator.type_in_view(LEAD, view.id, ACTION_DRAFT_INPUT, "y" * 501)
    await stack.emulator.wait_for_call("views.update", updates + 1)
    assert "Too long to send" in json.dumps(stack.emulator.open_views(LEAD)[-1].blocks)
    response = await stack.emulator.submit_view(LEAD, view.id, {"text": {
        ACTION_DRAFT_INPUT: "y" * 501}})
    body = json.loads(response.text)
    assert body["response_action"] == "errors"
    assert "1 over" in body["errors"]["text"]
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    assert [(d.status, d.text, d.original_text) for d in await drafts(stack)] == [
        ("pending", original, None)]
    assert await reply_rows(stack) == []

    edited = "Hi Ann, sorry! The fix lands by 7 pm; follow our status page. <!here>"
    response = await stack.emulator.submit_view(LEAD, view.id, {"text": {
        ACTION_DRAFT_INPUT: edited}})
    assert response.status == 200 and not response.text.strip()
    await stack.drain()

    assert [s["text"] for s in sink.received] == [edited]
    [draft] = await drafts(stack)
    assert (draft.status, draft.text, draft.original_text, draft.decided_by) == (
        "approved", edited, original, LEAD)
    approve = [e for e in await audit(stack, 1) if e.action == "approve"]
    assert len(approve) == 1 and approve[0].actor == LEAD
    assert approve[0].payload["edited_by_lead"] is True
    assert (approve[0].payload["original_text"], approve[0].payload["text"]) == (
        original, edited)
    decided = json.dumps(approval_requests(stack)[0].blocks)
    assert "(edited by the lead)" in decided and "Published as edited by <@U0LEAD1>" in decided
    assert "&lt;!here&gt;" in decided  # the lead's text is escaped like any other
    assert (await case_row(stack, 1)).state == "replied"
    assert stack.emulator.violations == []


async def test_no_one_approves_their_own_draft_not_even_with_an_edit(
    rstack: Stack, sink: ReplySink
) -> None:
    stack = rstack
    await ingest(stack, forum_mention())
    await claim(stack, agent=LEAD)
    await draft_and_submit(stack, agent=LEAD)
    await stack.drain()
    request = approval_requests(stack)[0]
    for action, label in ((ACTION_APPROVE_EDIT, "Edit & approve"), (ACTION_APPROVE, "Approve")):
        await stack.emulator.click(LEAD, APPROVALS, request.ts, action,
                                   button(request, label)["value"])
        assert "your own draft" in stack.emulator.ephemerals(APPROVALS, LEAD)[-1].text
    assert stack.emulator.open_views(LEAD) == []
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    await stack.drain()
    assert sink.received == []


async def test_group_leads_are_cached_briefly_then_looked_up_again(
    gstack: Stack, sink: ReplySink
) -> None:
    stack = gstack
    await awaiting_approval(stack)
    request = approval_requests(stack)[0]
    reject = button(request, "Reject")["value"]
    lookups = group_lookups(stack)
    assert lookups == 1  # the agent's first click asked; every later one used the cache

    # A group member is a lead: the reject modal opens for them.
    await stack.emulator.click(LEAD2, APPROVALS, request.ts, ACTION_REJECT, reject)
    assert len(stack.emulator.open_views(LEAD2)) == 1
    await stack.emulator.close_view(LEAD2, stack.emulator.open_views(LEAD2)[-1].id)

    # Removed from the group: within the cache time the old answer still holds ...
    stack.emulator.add_usergroup(GROUP, [])
    stack.clock.advance(seconds=30)
    await stack.emulator.click(LEAD2, APPROVALS, request.ts, ACTION_REJECT, reject)
    assert len(stack.emulator.open_views(LEAD2)) == 1
    assert group_lookups(stack) == lookups

    # ... and after it Slack is asked again: no longer a lead, the approval is refused.
    stack.clock.advance(seconds=31)
    await stack.emulator.click(LEAD2, APPROVALS, request.ts, ACTION_APPROVE,
                               button(request, "Approve")["value"])
    assert group_lookups(stack) == lookups + 1
    assert "Only a lead" in stack.emulator.ephemerals(APPROVALS, LEAD2)[-1].text
    assert (await case_row(stack, 1)).state == "awaiting_approval"

    # Back in the group (and the cache expired): the approval goes through.
    stack.emulator.add_usergroup(GROUP, [LEAD2])
    stack.clock.advance(seconds=61)
    await stack.emulator.click(LEAD2, APPROVALS, request.ts, ACTION_APPROVE,
                               button(request, "Approve")["value"])
    await stack.drain()
    assert (await case_row(stack, 1)).state == "replied"
    assert len(sink.received) == 1
    assert all(c.args == {"usergroup": GROUP}
               for c in stack.emulator.calls_to("usergroups.users.list"))


async def test_a_failed_group_lookup_denies_and_changes_nothing(
    gstack: Stack, sink: ReplySink
) -> None:
    stack = gstack
    await awaiting_approval(stack)
    request = approval_requests(stack)[0]
    approve = button(request, "Approve")["value"]
    stack.clock.advance(seconds=61)  # the cached membership expires
    stack.emulator.fail("usergroups.users.list", status=500, error="internal_error",
                        retry_after=None)
    await stack.emulator.click(LEAD2, APPROVALS, request.ts, ACTION_APPROVE, approve)
    failed = stack.emulator.calls_to("usergroups.users.list")[-1]
    assert (failed.status, failed.error) == (500, "internal_error")
    assert "Only a lead" in stack.emulator.ephemerals(APPROVALS, LEAD2)[-1].text
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    assert await reply_rows(stack) == []
    # Configured leads do not depend on the lookup.
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE, approve)
    await stack.drain()
    assert (await case_row(stack, 1)).state == "replied"
    assert len(sink.received) == 1


async def test_approval_request_in_the_cards_thread(
    database_url: str, tmp_path: Path, sink: ReplySink
) -> None:
    async with start_stack(database_url, tmp_path, reply_url=sink.url,
                           approval_in_thread=True) as stack:
        await awaiting_approval(stack)
        card = card_of(stack, 1)
        assert approval_requests(stack) == []
        [request] = stack.emulator.replies(MENTIONS, card.ts)
        assert labels(request) == ["Approve", "Edit & approve", "Reject"]
        assert "Reply for approval" in json.dumps(request.blocks)
        await stack.emulator.click(LEAD, MENTIONS, request.ts, ACTION_APPROVE,
                                   button(request, "Approve")["value"])
        await stack.drain()
        assert len(sink.received) == 1
        assert "Approved by <@U0LEAD1>" in json.dumps(
            stack.emulator.message(MENTIONS, request.ts).blocks)  # type: ignore[union-attr]
        assert stack.emulator.violations == []


async def test_a_draft_that_is_no_longer_current_is_refused(
    rstack: Stack, sink: ReplySink
) -> None:
    """A lead clicks on an approval request for a draft a newer one has replaced."""
    stack = rstack
    await awaiting_approval(stack)
    old = approval_requests(stack)[0]
    stale = button(old, "Approve")["value"]
    await stack.emulator.click(LEAD, APPROVALS, old.ts, ACTION_REJECT, stale)
    view = stack.emulator.open_views(LEAD)[-1]
    await stack.emulator.submit_view(LEAD, view.id, {"reason": {"value": "Say when"}})
    await stack.drain()
    await draft_and_submit(stack, eta="by 5 pm")
    assert [d.status for d in await drafts(stack)] == ["rejected", "pending"]

    # The old request's buttons, clicked from a client that has not seen its update yet.
    for action in (ACTION_APPROVE, ACTION_APPROVE_EDIT, ACTION_REJECT):
        await forged_click(stack, LEAD, APPROVALS, old.ts, action, stale)
        assert stack.emulator.ephemerals(APPROVALS, LEAD)[-1].text == (
            "That draft is no longer the current one; nothing was changed.")
    assert stack.emulator.open_views(LEAD) == []
    assert (await case_row(stack, 1)).state == "awaiting_approval"
    assert [d.status for d in await drafts(stack)] == ["rejected", "pending"]
    assert await reply_rows(stack) == []

    await stack.drain()
    assert "Rejected by <@U0LEAD1>" in json.dumps(approval_requests(stack)[0].blocks)
    assert labels(approval_requests(stack)[0]) == []
    current = approval_requests(stack)[1]
    await stack.emulator.click(LEAD, APPROVALS, current.ts, ACTION_APPROVE,
                               button(current, "Approve")["value"])
    await stack.drain()
    assert [s["text"] for s in sink.received] == [(await drafts(stack))[1].text]
    assert "by 5 pm" in sink.received[0]["text"]


async def test_configured_leads_never_need_the_group_lookup(gstack: Stack) -> None:
    """Configured lead ids are answered without asking Slack (and so without its failures)."""
    stack = gstack
    await ingest(stack, forum_mention())
    card = card_of(stack, 1)
    await stack.emulator.click(LEAD, MENTIONS, card.ts, ACTION_CLAIM,
                               button(card, "Claim")["value"])
    assert group_lookups(stack) == 0


async def test_closing_a_case_withdraws_the_draft_waiting_for_a_lead(
    rstack: Stack, sink: ReplySink
) -> None:
    """The approval request loses its buttons when the case closes, instead of inviting a
    lead to approve a reply to a closed case."""
    stack = rstack
    await awaiting_approval(stack)
    request = approval_requests(stack)[0]
    approve = button(request, "Approve")["value"]
    card = card_of(stack, 1)
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLOSE,
                               button(card, "Close")["value"])
    view = stack.emulator.open_views(ANN)[-1]
    response = await stack.emulator.submit_view(ANN, view.id,
                                                {"outcome": {"value": "no_action"}})
    assert response.status == 200
    await stack.drain()
    assert (await case_row(stack, 1)).state == "closed"
    assert [d.status for d in await drafts(stack)] == ["withdrawn"]
    updated = approval_requests(stack)[0]
    assert labels(updated) == []
    assert "Withdrawn: the case was closed" in json.dumps(updated.blocks)
    await forged_click(stack, LEAD, APPROVALS, request.ts, ACTION_APPROVE, approve)
    assert stack.emulator.ephemerals(APPROVALS, LEAD)[-1].text == (
        "That draft is no longer the current one; nothing was changed.")
    assert await reply_rows(stack) == []
    assert sink.received == []
