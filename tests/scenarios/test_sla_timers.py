"""SLA timers over the real stack with an injected clock: each nudge and escalation goes out
exactly once, also with two workers and across a restart; a reply or close cancels them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain.lifecycle import Actor, Outcome, Role
from bot.services.cases import close_case
from bot.services.sla import SlaTimers
from bot.slack.ids import ACTION_CLAIM
from db import timers as timer_store
from db.models import OutboxRow
from tests.stack import ANN, LEAD, MENTIONS, FakeClock, Stack, start_stack

ALERTS = "C0ALERTS"
SLA = {"targets": {"normal": "1h", "urgent": "15m"}, "nudge_before": 0.25}
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def mention(external_id: str, published: datetime = START,
            text: str = "Where is my parcel?") -> bytes:
    return json.dumps({
        "source": "mastodon", "external_id": external_id,
        "url": f"https://social.example/@ann/{external_id}",
        "author": {"handle": "@ann@example.social", "name": "Ann", "followers": 10},
        "text": text, "created_at": published.isoformat(),
    }).encode()


async def ingest(stack: Stack, external_id: str = "1",
                 text: str = "Where is my parcel?") -> None:
    status, body = await stack.post_webhook(mention(external_id, text=text))
    assert status == 200, body


def second_worker(stack: Stack) -> SlaTimers:
    """Another worker process on the same database (own loop object, same clock)."""
    timers = stack.components.timers
    assert timers is not None
    return SlaTimers(stack.components.services, timers.policy)


async def fire(stack: Stack, *workers: SlaTimers) -> int:
    timers = stack.components.timers
    assert timers is not None
    counts = await asyncio.gather(*(w.run_once() for w in (timers, *workers)))
    return sum(counts)


def nudges(stack: Stack) -> list[Any]:
    card = stack.cards()[0]
    return [m for m in stack.emulator.replies(MENTIONS, card.ts)
            if "needs a first reply" in m.text]


def escalations(stack: Stack) -> list[Any]:
    return [m for m in stack.emulator.messages(ALERTS) if "SLA breached" in m.text]


async def timer_rows(stack: Stack, case_id: int = 1) -> dict[str, tuple[str, datetime]]:
    async with stack.components.db.transaction() as tx:
        rows = await timer_store.timers_of(tx, case_id)
    return {r.kind: (r.status, r.due_at) for r in rows}


async def test_nudge_and_escalation_each_once_with_two_workers(database_url: str,
                                                               tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, sla=SLA, clock=FakeClock(START)) as stack:
        await ingest(stack)
        await stack.drain()
        other = second_worker(stack)
        assert await fire(stack, other) == 0
        assert await timer_rows(stack) == {
            "nudge": ("pending", datetime(2026, 11, 24, 9, 45, tzinfo=UTC)),
            "escalate": ("pending", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        }
        await stack.drain()
        card = stack.cards()[0]
        assert "left to reply" in json.dumps(card.blocks)
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM, _claim_value(card))

        stack.clock.advance(minutes=30)
        assert await fire(stack, other) == 0
        stack.clock.advance(minutes=16)  # 09:46: the nudge is due
        assert await fire(stack, other, second_worker(stack)) == 1
        assert await fire(stack, other) == 0
        await stack.drain()
        sent = nudges(stack)
        assert len(sent) == 1
        assert sent[0].text.startswith(f"<@{ANN}> case #1 (normal, Mastodon")
        assert "14 min left" in sent[0].text

        stack.clock.advance(minutes=15)  # 10:01: breached
        assert await fire(stack, other, second_worker(stack)) == 1
        stack.clock.advance(hours=5)
        assert await fire(stack, other) == 0
        await stack.drain()
        assert len(nudges(stack)) == 1
        alerts = escalations(stack)
        assert len(alerts) == 1
        assert f"claimed by <@{ANN}>" in alerts[0].text
        assert "target of 1 h" in alerts[0].text
        assert "SLA breached" in json.dumps(stack.cards()[0].blocks)
        assert {k: s for k, (s, _) in (await timer_rows(stack)).items()} == {
            "nudge": "fired", "escalate": "fired"}
        async with stack.components.db.transaction() as tx:
            actions = [e.action for e in await tx.audit_events(1)]
        assert actions.count("sla_nudge") == 1 and actions.count("sla_escalate") == 1
        assert stack.emulator.violations == []


def _claim_value(card: Any) -> str:
    for block in card.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ACTION_CLAIM:
                return str(element["value"])
    raise AssertionError("no Claim button")


async def test_timers_survive_a_restart_and_fire_once(database_url: str, tmp_path: Path
                                                      ) -> None:
    clock = FakeClock(START)
    async with start_stack(database_url, tmp_path, sla=SLA, clock=clock) as stack:
        await ingest(stack)
        assert await fire(stack) == 0  # armed; the card is not even posted yet
        clock.advance(minutes=50)
        assert await fire(stack) == 1  # fired and enqueued, then the process stops
    async with start_stack(database_url, tmp_path, sla=SLA, clock=clock) as stack:
        assert await fire(stack) == 0
        await stack.drain()  # the card, then the nudge in its thread
        sent = nudges(stack)
        assert len(sent) == 1 and "is unclaimed" in sent[0].text
        broadcast = stack.emulator.calls_to("chat.postMessage")[-1]
        assert broadcast.args.get("reply_broadcast") is True
        clock.advance(minutes=11)
    async with start_stack(database_url, tmp_path, sla=SLA, clock=clock) as stack:
        assert await fire(stack, second_worker(stack)) == 1
        assert await fire(stack) == 0
        await stack.drain()
        assert len(escalations(stack)) == 1 and "nobody has claimed it" in \
            escalations(stack)[0].text
        async with stack.components.db.transaction() as tx:
            rows = (await tx.session.execute(
                OutboxRow.__table__.select().where(OutboxRow.kind.like("sla.%")))).all()
        assert sorted(r.dedup_key for r in rows) == ["sla:1:escalate", "sla:1:nudge"]


async def test_closing_cancels_and_priority_change_rearms(database_url: str,
                                                          tmp_path: Path) -> None:
    async with start_stack(database_url, tmp_path, sla=SLA, clock=FakeClock(START)) as stack:
        await ingest(stack, "1")
        # A different text: a copy of case 1 would be grouped under it and share its SLA.
        await ingest(stack, "2", text="The parcel arrived broken")
        await fire(stack)
        async with stack.components.db.transaction() as tx:
            await tx.set_case_fields(2, priority="urgent")
        await fire(stack)
        assert (await timer_rows(stack, 2))["escalate"] == (
            "pending", datetime(2026, 11, 24, 9, 15, tzinfo=UTC))
        await close_case(stack.components.services, 1, Actor(LEAD, Role.LEAD), Outcome.SPAM)
        async with stack.components.db.transaction() as tx:
            await tx.set_case_fields(2, first_reply_at=START)
        stack.clock.advance(hours=3)
        assert await fire(stack) == 0
        assert {s for s, _ in (await timer_rows(stack, 1)).values()} == {"cancelled"}
        assert {s for s, _ in (await timer_rows(stack, 2)).values()} == {"cancelled"}
        await stack.drain()
        assert stack.emulator.messages(ALERTS) == []


async def test_old_imports_are_armed_but_not_alerted(database_url: str, tmp_path: Path
                                                     ) -> None:
    async with start_stack(database_url, tmp_path, sla=SLA, clock=FakeClock(START)) as stack:
        status, _ = await stack.post_webhook(mention("old", datetime(2026, 11, 1, tzinfo=UTC)))
        assert status == 200
        assert await fire(stack) == 0
        assert {s for s, _ in (await timer_rows(stack)).values()} == {"cancelled"}
        async with stack.components.db.transaction() as tx:
            record = await tx.get_case(1)
        assert record is not None
        assert record.case.sla_due_at == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
