"""Core flow over real HTTP: webhook → card → claim race → release → close, with the audit log."""

from __future__ import annotations

import asyncio
import json

from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE, ACTION_RELEASE
from db.models import AuditEventRow, CaseRow
from tests.stack import ANN, BOB, LEAD, MENTIONS, Stack


def mention(external_id: str = "109876", text: str = "My order never arrived @brand") -> dict:
    return {
        "source": "mastodon",
        "external_id": external_id,
        "url": f"https://social.example/@ann/{external_id}",
        "author": {"handle": "@ann@example.social", "name": "Ann", "followers": 1200,
                   "verified": False},
        "text": text,
        "created_at": "2026-11-22T08:15:00Z",
        "in_reply_to": None,
        "lang": "en",
    }


async def case_row(stack: Stack, case_id: int) -> CaseRow:
    async with stack.components.db.transaction() as tx:
        record = await tx.get_case(case_id)
    assert record is not None
    return record.case


async def audit(stack: Stack, case_id: int) -> list[AuditEventRow]:
    async with stack.components.db.transaction() as tx:
        return await tx.audit_events(case_id)


def button(message: object, label: str) -> dict:
    for block in message.blocks:  # type: ignore[attr-defined]
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == label:
                return element
    raise AssertionError(f"no {label!r} button")


def labels(message: object) -> list[str]:
    return [e["text"]["text"] for b in message.blocks  # type: ignore[attr-defined]
            for e in b.get("elements", []) if e.get("type") == "button"]


async def ingest_one(stack: Stack, **kwargs: str) -> int:
    status, body = await stack.post_webhook(json.dumps(mention(**kwargs)).encode())
    assert status == 200, body
    assert body["accepted"] == 1
    await stack.drain()
    cards = stack.cards()
    assert cards, "no card was posted"
    return len(cards)


async def test_webhook_posts_one_card_and_duplicates_are_ignored(stack: Stack) -> None:
    await ingest_one(stack)
    status, body = await stack.post_webhook(json.dumps(mention()).encode())
    assert (status, body["accepted"], body["duplicates"]) == (200, 0, 1)
    await stack.drain()
    posts = stack.emulator.calls_to("chat.postMessage")
    assert len(posts) == 1
    card = stack.cards()[0]
    assert labels(card) == ["Claim", "Close"]
    assert "My order never arrived" in json.dumps(card.blocks)
    assert stack.emulator.violations == []


async def test_bad_signature_gets_401_and_stores_nothing(stack: Stack) -> None:
    status, _ = await stack.post_webhook(json.dumps(mention()).encode(), signature="sha256=00")
    assert status == 401
    async with stack.components.db.transaction() as tx:
        assert await tx.count_by_state() == {}


async def test_claim_race_has_one_winner_and_losers_are_told(stack: Stack) -> None:
    await ingest_one(stack)
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    responses = await asyncio.gather(
        stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value),
        stack.emulator.click(BOB, MENTIONS, card.ts, ACTION_CLAIM, value),
        stack.emulator.click(LEAD, MENTIONS, card.ts, ACTION_CLAIM, value),
    )
    assert [r.status for r in responses] == [200, 200, 200]
    case = await case_row(stack, 1)
    assert case.state == "claimed"
    winner = case.assignee
    assert winner in (ANN, BOB, LEAD)
    losers = {ANN, BOB, LEAD} - {winner}
    told = {e.user: e.text for e in stack.emulator.ephemerals(MENTIONS)}
    assert set(told) == losers
    assert all(text == f"Already claimed by <@{winner}>." for text in told.values())
    await stack.drain()
    updated = stack.cards()[0]
    assert f"Claimed by <@{winner}>" in json.dumps(updated.blocks)
    # The stack's "web" source has no reply_url, so it cannot publish: no `Draft reply`.
    assert labels(updated) == ["Release", "Close"]
    events = [(e.action, e.actor, e.from_state, e.to_state) for e in await audit(stack, 1)]
    assert events == [("ingest", "mentiondesk", None, "new"),
                      ("claim", winner, "new", "claimed")]


async def test_double_click_applies_once(stack: Stack) -> None:
    await ingest_one(stack)
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    assert [e.action for e in await audit(stack, 1)] == ["ingest", "claim"]
    assert [e.text for e in stack.emulator.ephemerals(MENTIONS, ANN)] == [
        "You already claimed this case."]


async def test_release_then_close_with_outcome(stack: Stack) -> None:
    await ingest_one(stack)
    card = stack.cards()[0]
    value = button(card, "Claim")["value"]
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
    await stack.drain()
    # Bob may not release Ann's case.
    await stack.emulator.click(BOB, MENTIONS, card.ts, ACTION_RELEASE, value)
    assert (await case_row(stack, 1)).assignee == ANN
    assert "only they or a lead" in stack.emulator.ephemerals(MENTIONS, BOB)[-1].text
    await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_RELEASE, value)
    assert (await case_row(stack, 1)).state == "new"
    await stack.drain()
    card = stack.cards()[0]
    assert labels(card) == ["Claim", "Close"]
    await stack.emulator.click(BOB, MENTIONS, card.ts, ACTION_CLOSE, value)
    views = stack.emulator.open_views(BOB)
    assert len(views) == 1
    response = await stack.emulator.submit_view(
        BOB, views[0].id, {"outcome": {"value": "no_action"}, "note": {"value": "just praise"}})
    assert response.status == 200
    case = await case_row(stack, 1)
    assert (case.state, case.outcome, case.note) == ("closed", "no_action", "just praise")
    await stack.drain()
    assert "Closed as *No action needed*" in json.dumps(stack.cards()[0].blocks)
    assert labels(stack.cards()[0]) == []
    actions = [e.action for e in await audit(stack, 1)]
    assert actions == ["ingest", "claim", "release", "close"]
    assert stack.emulator.violations == []
