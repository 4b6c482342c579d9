"""Grouped cases through the whole stack: a retweet storm is one piece of work (one SLA, one
unclaimed case), its copies still count as received, close with their lead as duplicates and
can each be opened as a card of their own from the lead's thread. Also `/mentions find` and
a follow-up that arrives in the same batch as the mention it answers.

Each test runs on SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.services.reports import build_report, parse_period
from bot.slack.group_ids import ACTION_GROUP_OPEN, GroupMemberValue
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE
from db import timers as timer_store
from db.models import AuditEventRow, CaseRow, OutboxRow, SlaTimerRow
from tests.stack import ANN, BOB, LEAD, MENTIONS, FakeClock, Stack, start_stack

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SLA = {"targets": {"urgent": "15m", "high": "1h", "normal": "4h", "low": "8h"},
       "nudge_before": 0.25}
ORIGINAL = "Our checkout has been down for an hour and I was charged twice, sort it out"
OUTSIDER = "U0OUTSIDE"


def mention(n: int | str, text: str, *, handle: str | None = None, source: str = "x",
            at: datetime = START, in_reply_to: str | None = None) -> dict[str, Any]:
    return {
        "source": source, "external_id": str(n),
        "url": f"https://social.example/status/{n}",
        "author": {"handle": handle or f"@fan{n}", "name": "", "followers": 120},
        "text": text, "created_at": at.isoformat(), "in_reply_to": in_reply_to, "lang": "en",
    }


def storm(count: int, at: datetime = START, first: int = 1000) -> list[dict[str, Any]]:
    return [mention(first + n, f"RT @angry_ann: {ORIGINAL}", handle=f"@retweeter{n}", at=at)
            for n in range(count)]


async def post(stack: Stack, items: list[dict[str, Any]]) -> None:
    status, body = await stack.post_webhook(json.dumps(items).encode())
    assert status == 200, body
    assert body["accepted"] == len(items), body


async def cases(stack: Stack) -> list[CaseRow]:
    async with stack.components.db.transaction() as tx:
        return list((await tx.session.execute(select(CaseRow).order_by(CaseRow.id))).scalars())


async def events(stack: Stack, case_id: int) -> list[AuditEventRow]:
    async with stack.components.db.transaction() as tx:
        return await tx.audit_events(case_id)


async def outbox(stack: Stack, kind: str) -> list[OutboxRow]:
    async with stack.components.db.transaction() as tx:
        stmt = select(OutboxRow).where(OutboxRow.kind == kind).order_by(OutboxRow.id)
        return list((await tx.session.execute(stmt)).scalars())


async def command(stack: Stack, user: str, text: str) -> str:
    response = await stack.emulator.send_command(user, text)
    assert response.status == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


def thread_listing(stack: Stack) -> Any:
    # Cards go out in no fixed order (the dispatcher works in parallel): look under each.
    [listing] = [m for card in stack.cards()
                 for m in stack.emulator.replies(MENTIONS, card.ts) if m.ts != card.ts]
    return listing


def open_buttons(message: Any) -> dict[int, dict[str, Any]]:
    found = {}
    for block in message.blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == ACTION_GROUP_OPEN:
            found[GroupMemberValue.unpack(accessory["value"]).case_id] = block
    return found


def button(message: Any, label: str) -> dict[str, Any]:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == label:
                return element
    raise AssertionError(f"no {label!r} button")


async def test_a_storm_is_one_unclaimed_case_with_one_sla(database_url: str,
                                                          tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, sla=SLA, clock=FakeClock(START)) as stack:
        await post(stack, storm(100))
        await stack.drain()
        rows = await cases(stack)
        lead = rows[0]
        assert len(rows) == 100 and [r.id for r in rows if r.group_id is None] == [lead.id]
        assert len(stack.cards()) == 1

        timers = stack.components.timers
        assert timers is not None
        assert await timers.arm() == 1, "only the lead carries the SLA"
        async with stack.components.db.transaction() as tx:
            armed = (await tx.session.execute(select(SlaTimerRow))).scalars().all()
            lead_timers = {t.kind: t.due_at for t in await timer_store.timers_of(tx, lead.id)}
        assert {t.case_id for t in armed} == {lead.id}
        assert await timers.arm() == 0

        status = await command(stack, LEAD, "status")
        assert "new *1*" in status, status
        assert "99 similar mentions wait on their lead's card" in status
        assert f"*Oldest unclaimed:* #{lead.id}," in status

        # The nudge, then the breach: one of each, for the lead only.
        stack.clock.now = lead_timers["nudge"]
        assert await timers.run_once() == 1
        stack.clock.now = lead_timers["escalate"]
        assert await timers.run_once() == 1
        assert await timers.run_once() == 0
        await stack.drain()
        nudges, escalations = await outbox(stack, "sla.nudge"), await outbox(stack, "sla.escalate")
        assert [r.case_id for r in nudges] == [lead.id]
        assert [r.case_id for r in escalations] == [lead.id]
        status = await command(stack, LEAD, "status")
        assert "*SLA:* 0 at risk · 1 breached" in status

        await stack.open_home(ANN)
        view = stack.emulator.home(ANN)
        assert view is not None
        assert "1 unclaimed" in json.dumps(view.view)
        assert "100 unclaimed" not in json.dumps(view.view)

        # Reports still count every copy as a received mention.
        report = await build_report(stack.components.services,
                                    parse_period("today", stack.clock.now, ZoneInfo("UTC")))
        assert report.current.received == 100
        assert stack.emulator.violations == []


async def test_closing_the_lead_closes_its_copies_as_duplicates(database_url: str,
                                                                 tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, clock=FakeClock(START)) as stack:
        await post(stack, storm(5))
        await stack.drain()
        assert len(open_buttons(thread_listing(stack))) == 4
        card = stack.cards()[0]
        value = button(card, "Claim")["value"]
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, value)
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLOSE, value)
        [view] = stack.emulator.open_views(ANN)
        response = await stack.emulator.submit_view(
            ANN, view.id, {"outcome": {"value": "resolved"}, "note": {"value": ""}})
        assert response.status == 200

        lead, *members = await cases(stack)
        assert (lead.state, lead.outcome) == ("closed", "resolved")
        assert {(m.state, m.outcome) for m in members} == {("closed", "duplicate")}
        assert all(m.closed_at == lead.closed_at for m in members)
        for member in members:
            trail = [(e.action, e.actor, e.from_state, e.to_state)
                     for e in await events(stack, member.id or 0)]
            assert trail == [("ingest", "mentiondesk", None, "new"),
                             ("close", ANN, "new", "closed")]
            close = (await events(stack, member.id or 0))[-1]
            assert close.payload["duplicate_of"] == lead.id
            assert close.payload["outcome"] == "duplicate"

        await stack.drain()
        listing = thread_listing(stack)
        assert open_buttons(listing) == {}, "closed copies have nothing to open"
        assert "_closed_" in json.dumps(listing.blocks)

        # A copy arriving after the close joins the closed group, closed as a duplicate.
        stack.clock.advance(minutes=1)
        await post(stack, storm(1, at=stack.clock.now, first=2000))
        await stack.drain()
        late = (await cases(stack))[-1]
        assert (late.group_id, late.state, late.outcome) == (lead.id, "closed", "duplicate")
        assert len(stack.cards()) == 1
        status = await command(stack, LEAD, "status")
        assert "new *0*" in status and "similar" not in status
        assert stack.emulator.violations == []


async def test_a_grouped_case_opens_as_its_own_card_from_the_thread(
        database_url: str, tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, clock=FakeClock(START),
                           agents=[ANN, BOB]) as stack:
        stack.emulator.add_user(OUTSIDER, "olga", real_name="Olga Outside")
        await post(stack, storm(3))
        await post(stack, [mention("other", "Loving the new release, great job team",
                                   handle="@happy")])
        await stack.drain()
        lead, first, second, other = await cases(stack)
        listing = thread_listing(stack)
        buttons = open_buttons(listing)
        assert set(buttons) == {first.id, second.id}
        block_id = buttons[second.id]["block_id"]
        value = GroupMemberValue(lead.id or 0, second.id or 0).pack()

        # Only members of the care team may open; nothing changes otherwise.
        await stack.emulator.click(OUTSIDER, MENTIONS, listing.ts, ACTION_GROUP_OPEN,
                                   block_id=block_id)
        assert "Only members of the care team" in stack.emulator.ephemerals(
            MENTIONS, OUTSIDER)[-1].text
        # A forged value naming a case outside this group is refused.
        forged = GroupMemberValue(lead.id or 0, other.id or 0).pack()
        await stack.emulator.click(BOB, MENTIONS, listing.ts, ACTION_GROUP_OPEN, forged,
                                   block_id=block_id)
        assert f"Case #{other.id} is not grouped with case #{lead.id}" in \
            stack.emulator.ephemerals(MENTIONS, BOB)[-1].text
        assert [(c.id, c.group_id) for c in await cases(stack)] == [
            (lead.id, None), (first.id, lead.id), (second.id, lead.id), (other.id, None)]

        await stack.emulator.click(ANN, MENTIONS, listing.ts, ACTION_GROUP_OPEN, value,
                                   block_id=block_id)
        assert stack.emulator.ephemerals(MENTIONS, ANN)[-1].text == \
            f"Case #{second.id} now has its own card."
        # A second click (or a colleague's) opens nothing twice.
        await stack.emulator.click(BOB, MENTIONS, listing.ts, ACTION_GROUP_OPEN, value,
                                   block_id=block_id)
        assert "not grouped with" in stack.emulator.ephemerals(MENTIONS, BOB)[-1].text
        await stack.drain()

        opened = (await cases(stack))[2]
        assert opened.group_id is None and opened.message_ts
        trail = await events(stack, second.id or 0)
        assert [(e.action, e.actor) for e in trail] == [
            ("ingest", "mentiondesk"), ("open_from_group", ANN)]
        assert trail[-1].payload["group_id"] == lead.id
        posts = [r for r in await outbox(stack, "card.post") if r.case_id == second.id]
        assert [r.dedup_key for r in posts] == [f"card.post:{second.id}"]

        cards = stack.cards()
        assert len(cards) == 3
        new_card = next(c for c in cards if c.ts == opened.message_ts)
        assert "RT @angry_ann" in json.dumps(new_card.blocks)
        lead_card = next(c for c in cards if c.ts == lead.message_ts)
        assert "+1 similar" in json.dumps(lead_card.blocks)
        listing = thread_listing(stack)
        assert set(open_buttons(listing)) == {first.id}
        assert "*1 similar mention* grouped" in json.dumps(listing.blocks)

        # The opened case is claimable like any other.
        await stack.emulator.click(BOB, MENTIONS, new_card.ts, ACTION_CLAIM,
                                   button(new_card, "Claim")["value"])
        assert (await cases(stack))[2].assignee == BOB
        assert stack.emulator.violations == []


async def test_find_by_handle_is_exact_and_text_search_is_literal(database_url: str,
                                                                  tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, clock=FakeClock(START)) as stack:
        await post(stack, [
            mention(1, "Where is my parcel from last week?", handle="@ann"),
            mention(2, "Love the new colours of the app", handle="@annabel"),
            mention(3, "Is the store open on Sunday morning?", handle="@Ann@Example.Social",
                    source="mastodon"),
            mention(4, "The invoice shows the wrong address", handle="@ann@other.social",
                    source="mastodon"),
            mention(5, "Any news about the outage in the north?", handle="u/ann",
                    source="reddit"),
            mention(6, "Got 50% off_sale today, thanks", handle="@bob"),
            mention(7, "Paid 50 euros for axb shipping", handle="@carl"),
        ])
        await stack.drain()
        async with stack.components.db.transaction() as tx:
            await tx.compare_and_set(1, 1, state="closed", outcome="resolved",
                                     closed_at=START)

        def listed(text: str) -> list[int]:
            return [int(line.split("#", 1)[1].split(" ", 1)[0])
                    for line in text.splitlines() if line.startswith("• #")]

        text = await command(stack, ANN, "find @ann")
        assert listed(text) == [5, 4, 3, 1]  # never @annabel; newest first
        assert text.startswith("*4 cases from @ann*")
        assert "_closed_ (resolved)" in text and "<!date^" in text
        assert listed(await command(stack, ANN, "find ANN")) == [5, 4, 3, 2, 1]
        assert listed(await command(stack, ANN, "find @ann@example.social")) == [3]
        assert listed(await command(stack, ANN, "find ann@EXAMPLE.social")) == [3]
        assert listed(await command(stack, ANN, "find u/ann")) == [5, 4, 3, 1]
        assert listed(await command(stack, ANN, "find @nobody")) == []
        assert await command(stack, ANN, "find @nobody") == "No case matches that."
        # `%` and `_` are literal characters, not wildcards.
        assert listed(await command(stack, ANN, "find 50%")) == [6]
        assert listed(await command(stack, ANN, "find a_b")) == []
        assert listed(await command(stack, ANN, "find off_sale")) == [6]
        assert listed(await command(stack, ANN, "find %")) == [6]


async def test_a_follow_up_in_the_same_batch_joins_its_parent(database_url: str,
                                                              tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, clock=FakeClock(START)) as stack:
        await post(stack, [
            mention("p1", "My refund has not arrived after three weeks", handle="@carol"),
            mention("p2", "Still nothing, please answer", handle="@carol", in_reply_to="p1"),
            # Listed before the mention it answers: still joins it.
            mention("q2", "Hello? Anyone there?", handle="@dave", in_reply_to="q1"),
            mention("q1", "The app logs me out every five minutes", handle="@dave"),
            # Another author answering carol opens a case of their own.
            mention("r1", "Same problem with my refund here", handle="@erin",
                    in_reply_to="p1"),
        ])
        await stack.drain()
        rows = await cases(stack)
        assert [r.author_handle for r in rows] == ["@carol", "@dave", "@erin"]
        assert len(stack.cards()) == 3
        for row, follow_up in ((rows[0], "p2"), (rows[1], "q2")):
            trail = await events(stack, row.id or 0)
            assert [(e.action, e.from_state, e.to_state) for e in trail] == [
                ("ingest", None, "new"), ("follow_up", "new", "new")]
            assert trail[1].payload["external_id"] == follow_up
        assert [e.action for e in await events(stack, rows[2].id or 0)] == ["ingest"]


async def test_a_grouped_author_writing_again_gets_a_card(database_url: str,
                                                          tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, clock=FakeClock(START)) as stack:
        await post(stack, storm(3))
        await stack.drain()
        lead, member, _ = await cases(stack)
        stack.clock.advance(minutes=5)
        await post(stack, [mention("reply", "And I still have no refund, answer me please",
                                   handle="@retweeter1", at=stack.clock.now,
                                   in_reply_to="1001")])
        await stack.drain()
        rows = await cases(stack)
        assert len(rows) == 3, "the reply joins the grouped case"
        assert rows[1].group_id is None and rows[1].message_ts
        trail = [(e.action, e.actor) for e in await events(stack, member.id or 0)]
        assert trail == [("ingest", "mentiondesk"), ("follow_up", "mentiondesk"),
                         ("open_from_group", "mentiondesk")]
        assert len(stack.cards()) == 2
        assert "+1 similar" in json.dumps(
            next(c for c in stack.cards() if c.ts == lead.message_ts).blocks)
        assert stack.emulator.violations == []
