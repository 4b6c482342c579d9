"""Events are recorded in batches: each caller learns whether its event is new, effects are
queued once, and a bad event fails alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.event_intake import EventIntake
from db.models import OutboxRow, SlackDeliveryRow
from db.store import Database

NOW = datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)
USERS = [f"U0USER{i:02d}" for i in range(10)]


def opened(event_id: str, user: str) -> dict[str, Any]:
    return {"type": "event_callback", "event_id": event_id,
            "event": {"type": "app_home_opened", "user": user, "tab": "home"}}


async def count(db: Database, table: Any) -> int:
    async with db.snapshot() as tx:
        return int((await tx.session.execute(select(func.count()).select_from(table)))
                   .scalar_one())


async def test_concurrent_events_share_commits_and_apply_once(db: Database) -> None:
    wakes: list[int] = []
    intake = EventIntake(db, lambda: NOW, lambda: wakes.append(1))
    # 150 events, each delivered twice (a retry racing its original), 10 users.
    envelopes = [opened(f"Ev{i % 150:04d}", USERS[i % 10]) for i in range(300)]
    answers = await asyncio.gather(*(intake.first_delivery(e) for e in envelopes))
    await intake.close()
    print(f"\n300 deliveries of 150 events written in {intake.commits} commits")
    assert answers[:150] == [True] * 150 and answers[150:] == [False] * 150
    assert await count(db, SlackDeliveryRow) == 150
    assert await count(db, OutboxRow) == 10  # one Home publish per user in the open window
    assert intake.commits < 30 and wakes


async def test_a_retry_after_the_batch_is_still_recognised(db: Database) -> None:
    intake = EventIntake(db, lambda: NOW, lambda: None)
    assert await intake.first_delivery(opened("Ev0001", USERS[0])) is True
    assert await intake.first_delivery(opened("Ev0001", USERS[0])) is False
    assert await intake.first_delivery({"type": "event_callback", "event": {}}) is True
    assert await count(db, OutboxRow) == 1


async def test_a_bad_event_fails_alone(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite does not enforce the key's length, so nothing here can fail")
    intake = EventIntake(db, lambda: NOW, lambda: None)
    results = await asyncio.gather(
        intake.first_delivery(opened("Ev0A", USERS[0])),
        intake.first_delivery(opened("Ev" + "X" * 300, USERS[1])),
        intake.first_delivery(opened("Ev0B", USERS[2])), return_exceptions=True)
    await intake.close()
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Exception)
    assert await count(db, SlackDeliveryRow) == 2
    assert await count(db, OutboxRow) == 2
