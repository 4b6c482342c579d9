"""Slack's Events API retries: each event applies exactly once, whichever delivery arrives.

Scale: on PostgreSQL the issue's figures, 1,000 `app_home_opened` events (3,700 requests);
on SQLite 300 events (1,110 requests), the same code with one writer, to keep CI time down.
Each event is meant to arrive 4 times
(the original, then retries with the same `event_id` and `X-Slack-Retry-Num` 1..3 and an
`X-Slack-Retry-Reason`); for one event in five the original is lost, and for one in ten the
first retry too, so only later retries arrive. Every delivery is a signed HTTP request into
the running bot, 20 at a time, shuffled so that copies of one event race each other.

An application queues a `views.publish` for the event's user (through the outbox), the one
effect the bot has for this event: every user opens their Home once, so each user must see
exactly one publish.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bot.web import listeners_finished
from db.models import SlackDeliveryRow
from tests.reliability.harness import report
from tests.stack import start_stack

EVENTS = {"postgresql": 1000, "sqlite": 300}
CHUNK = 20


def deliveries(users: list[str], rng: random.Random) -> tuple[list[tuple[int, int]], int]:
    """(event index, retry number) for every request Slack manages to send; 0 is the
    original. Returns how many originals were lost as well."""
    out: list[tuple[int, int]] = []
    lost_originals = 0
    for index in range(len(users)):
        first = 0
        if index % 5 == 0:
            first = 2 if index % 10 == 0 else 1
            lost_originals += 1
        out.extend((index, retry) for retry in range(first, 4))
    rng.shuffle(out)
    return out, lost_originals


async def test_each_retried_event_applies_exactly_once(database_url: str,
                                                       tmp_path: Path) -> None:
    events = EVENTS["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    async with start_stack(database_url, tmp_path) as stack:
        emulator = stack.emulator
        users = [f"U0R{i:05d}" for i in range(events)]
        for user in users:
            emulator.add_user(user, user.lower())
        event_ids = [f"Ev0R{i:06d}" for i in range(events)]
        plan, lost_originals = deliveries(users, random.Random(8))

        async def deliver(index: int, retry: int) -> int:
            event = {"type": "app_home_opened", "user": users[index],
                     "channel": f"D0R{index:05d}", "tab": "home"}
            response = await emulator.send_event(
                event, event_id=event_ids[index], retry_num=retry or None,
                retry_reason="http_timeout" if retry else None)
            return response.status

        statuses: list[int] = []
        for start in range(0, len(plan), CHUNK):
            chunk = plan[start:start + CHUNK]
            statuses += await asyncio.gather(*(deliver(i, r) for i, r in chunk))
        await listeners_finished(timeout=60)
        # Each applied open queued one publish; the dispatcher sends them.
        await stack.drain()

        publishes = emulator.calls_to("views.publish")
        per_user = Counter(str(c.args.get("user_id")) for c in publishes if c.ok)
        async with stack.components.db.transaction() as tx:
            remembered = (await tx.session.execute(
                select(func.count()).select_from(SlackDeliveryRow)
                .where(SlackDeliveryRow.key.like("event:Ev0R%")))).scalar_one()

    delivered = sum(1 for u in users if per_user[u] >= 1)
    duplicates = sum(n - 1 for n in per_user.values() if n > 1)
    lost = events - delivered
    report("event retries", events=events, requests=len(plan), lost_originals=lost_originals,
           delivered=delivered, duplicates=duplicates, lost=lost,
           failed_publishes=sum(1 for c in publishes if not c.ok))
    assert Counter(statuses) == Counter({200: len(plan)})
    assert (delivered, duplicates, lost) == (events, 0, 0)
    assert set(per_user) == set(users)
    assert remembered == events
    assert emulator.violations == []
