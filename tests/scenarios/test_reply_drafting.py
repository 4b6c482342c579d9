"""Drafting over real HTTP: the live preview and count, pre-approved templates, and sources
that cannot publish a reply."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.connectors.hackernews import HackerNewsConnector
from bot.connectors.x import XConnector
from bot.services.drafting import reply_possible
from bot.slack.ids import ACTION_DRAFT, ACTION_DRAFT_INPUT, ButtonValue
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.reply_steps import (
    approval_requests,
    claim,
    draft_and_submit,
    drafts,
    forged_click,
    forum_mention,
    ingest,
    open_draft,
)
from tests.scenarios.test_claim_flow import audit, case_row, labels
from tests.stack import ANN, MENTIONS, Stack, start_stack


def shown(stack: Stack) -> str:
    return json.dumps(stack.emulator.open_views(ANN)[-1].blocks, ensure_ascii=False)


async def type_and_wait(stack: Stack, block_id: str, text: str) -> None:
    """Type into the modal; the bot must answer with a views.update (dispatch_action)."""
    view = stack.emulator.open_views(ANN)[-1]
    before = len(stack.emulator.calls_to("views.update"))
    response = await stack.emulator.type_in_view(ANN, view.id, ACTION_DRAFT_INPUT, text,
                                                  block_id=block_id)
    assert response is not None, f"typing in {block_id!r} does not reach the bot"
    assert response.status == 200
    await stack.emulator.wait_for_call("views.update", before + 1)


async def test_preview_and_count_follow_the_agent_as_they_type(rstack: Stack) -> None:
    stack = rstack
    await ingest(stack, forum_mention())
    await claim(stack)
    await open_draft(stack)
    assert "Preview after the fields are filled in" in shown(stack)

    await type_and_wait(stack, "var__eta", "by noon")
    assert "We expect it to be fixed by noon" in shown(stack)
    assert "characters — " in shown(stack) and " left" in shown(stack)
    assert "Too long" not in shown(stack)

    await type_and_wait(stack, "var__eta", "x" * 480)
    assert "Too long to send" in shown(stack) and "over" in shown(stack)

    # The final text replaces the rendered reply in the preview and in the count.
    await type_and_wait(stack, "text", "Short and sweet.")
    assert "Short and sweet." in shown(stack) and "Too long" not in shown(stack)
    assert "16/500 characters" in shown(stack)

    # What was typed survives every rebuild, and the submission carries it.
    view = stack.emulator.open_views(ANN)[-1]
    assert view.values["var__eta"][ACTION_DRAFT_INPUT]["value"] == "x" * 480
    response = await stack.emulator.submit_view(ANN, view.id)
    assert response.status == 200 and not response.text.strip()
    [draft] = await drafts(stack)
    assert (draft.text, draft.edited) == ("Short and sweet.", True)

    updates = stack.emulator.calls_to("views.update")
    assert updates and all(c.ok and c.args.get("hash") for c in updates)
    assert stack.emulator.violations == []


async def test_over_the_limit_while_typing_is_still_refused_on_submit(rstack: Stack) -> None:
    stack = rstack
    await ingest(stack, forum_mention())
    await claim(stack)
    await open_draft(stack)
    await type_and_wait(stack, "var__eta", "by noon")
    await type_and_wait(stack, "text", "z" * 501)
    assert "Too long to send" in shown(stack)
    view = stack.emulator.open_views(ANN)[-1]
    response = await stack.emulator.submit_view(ANN, view.id)
    body = json.loads(response.text)
    assert body["response_action"] == "errors" and "1 over" in body["errors"]["text"]
    assert await drafts(stack) == []
    assert (await case_row(stack, 1)).state == "claimed"


@pytest.mark.parametrize(
    ("allowed", "final_text", "auto"),
    [(True, None, True), (True, "Sorry! Fixed by 6 pm.", False), (False, None, False)],
    ids=["allowed-unedited", "allowed-edited", "not-allowed"],
)
async def test_preapproved_template_skips_approval_only_unedited_and_when_allowed(
    database_url: str, tmp_path: Path, sink: ReplySink, allowed: bool, final_text: str | None,
    auto: bool,
) -> None:
    async with start_stack(database_url, tmp_path, reply_url=sink.url,
                           replies={"allow_preapproved_without_approval": allowed}) as stack:
        await ingest(stack, forum_mention())
        await claim(stack)
        response = await draft_and_submit(stack, final_text=final_text)  # apology_outage
        assert response.status == 200 and not response.text.strip()
        await stack.drain()
        [draft] = await drafts(stack)
        actions = [e.action for e in await audit(stack, 1)]
        if auto:
            assert (draft.status, draft.decided_by, draft.preapproved) == (
                "approved", "mentiondesk", True)
            assert approval_requests(stack) == []
            assert len(sink.received) == 1 and "by 6 pm" in sink.received[0]["text"]
            assert actions == ["ingest", "claim", "auto_approve", "mark_replied"]
            assert (await case_row(stack, 1)).state == "replied"
        else:
            assert draft.status == "pending"
            assert len(approval_requests(stack)) == 1
            assert sink.received == []
            assert actions == ["ingest", "claim", "submit_draft"]
            assert (await case_row(stack, 1)).state == "awaiting_approval"


async def test_a_template_that_is_not_preapproved_always_asks_a_lead(
    database_url: str, tmp_path: Path, sink: ReplySink
) -> None:
    async with start_stack(database_url, tmp_path, reply_url=sink.url,
                           replies={"allow_preapproved_without_approval": True}) as stack:
        await ingest(stack, forum_mention())
        await claim(stack)
        view = await open_draft(stack, template="refund_dm")
        await stack.emulator.submit_view(ANN, view.id, {"var__order_days": {
            ACTION_DRAFT_INPUT: "30"}})
        await stack.drain()
        assert [d.status for d in await drafts(stack)] == ["pending"]
        assert len(approval_requests(stack)) == 1 and sink.received == []


async def test_a_source_that_cannot_reply_offers_no_draft(stack: Stack) -> None:
    """The stack's `web` source has no reply_url: nothing could publish a reply."""
    await ingest(stack, forum_mention())
    card = await claim(stack)
    assert labels(card) == ["Release", "Close"]
    await forged_click(stack, ANN, MENTIONS, card.ts, ACTION_DRAFT, ButtonValue(1).pack())
    told = await stack.emulator.wait_for(lambda: stack.emulator.ephemerals(MENTIONS, ANN))
    assert "Replies cannot be posted to 'web'" in told[-1].text
    assert stack.emulator.calls_to("views.open") == []
    assert (await case_row(stack, 1)).state == "claimed"


async def test_x_without_a_user_token_and_feed_sources_cannot_reply(stack: Stack) -> None:
    await ingest(stack, forum_mention(text="@brand help"))
    async with stack.components.db.transaction() as tx:
        record = await tx.get_case(1)
    assert record is not None
    async with aiohttp.ClientSession() as http:
        read_only = XConnector(name="web", session=http, bearer_token="b", user_id="1")
        can_post = XConnector(name="web", session=http, bearer_token="b", user_id="1",
                              user_token="u", handle="brand")
        hn = HackerNewsConnector(name="web", session=http, keywords=["brand"])
        assert reply_possible({"web": read_only}, record)[0] is False
        assert reply_possible({"web": hn}, record)[0] is False
        assert reply_possible({}, record)[0] is False
        assert reply_possible({"web": can_post}, record) == (True, "")


async def test_keystrokes_racing_for_one_view_never_overwrite_a_newer_modal(
    rstack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Two keystrokes sent against the same view hash: Slack applies the first rebuild and
    refuses the second with hash_conflict, which the bot takes in its stride."""
    stack = rstack
    await ingest(stack, forum_mention())
    await claim(stack)
    view = await open_draft(stack)
    before = len(stack.emulator.calls_to("views.update"))
    responses = await asyncio.gather(
        stack.emulator.type_in_view(ANN, view.id, ACTION_DRAFT_INPUT, "by noon",
                                    block_id="var__eta"),
        stack.emulator.type_in_view(ANN, view.id, ACTION_DRAFT_INPUT, "by noon!",
                                    block_id="var__eta"),
    )
    assert all(r is not None and r.status == 200 for r in responses)
    await stack.emulator.wait_for_call("views.update", before + 2)
    raced = stack.emulator.calls_to("views.update")[before:]
    assert sorted(str(c.error) for c in raced) == ["None", "hash_conflict"]
    assert stack.emulator.ephemerals() == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "We expect it to be fixed by noon" in shown(stack)
