"""Slack's retry dedup keys are kept at least 24 hours, then forgotten by the dispatcher's
hourly chore. The stack's clock is moved by hand; nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select

from bot.reliability import DEDUP_CLEANUP_EVERY, FORGET_SLICE
from bot.settings import ReliabilityConfig
from bot.wiring import Components, build
from db.models import SlackDeliveryRow
from tests.reliability.harness import reliable_settings
from tests.stack import ANN, FakeClock, Stack

HOME = {"type": "app_home_opened", "user": ANN, "channel": "D0ANN", "tab": "home"}


async def remembered(components: Components) -> list[str]:
    async with components.db.transaction() as tx:
        rows = await tx.session.execute(select(SlackDeliveryRow.key)
                                        .order_by(SlackDeliveryRow.key))
        return list(rows.scalars())


async def forget(components: Components) -> None:
    """Run the cleanup chore the composition root gave the dispatcher."""
    chores = [chore for every, chore in components.dispatcher.chores
              if every == DEDUP_CLEANUP_EVERY]
    assert len(chores) == 1, "the dispatcher has no hourly dedup cleanup"
    await chores[0]()


async def deliver(stack: Stack, event_id: str, retry_num: int | None = None) -> None:
    response = await stack.emulator.send_event(HOME, event_id=event_id, retry_num=retry_num)
    assert response.status == 200


async def test_keys_younger_than_a_day_are_kept_older_ones_removed(stack: Stack) -> None:
    async with stack.queued_then_drained():
        await deliver(stack, "Ev0OLD")
    stack.clock.advance(hours=20)
    async with stack.queued_then_drained():
        await deliver(stack, "Ev0NEW")
    assert len(stack.emulator.calls_to("views.publish")) == 2
    stack.clock.advance(hours=3, minutes=59)  # Ev0OLD is 23 h 59 min old
    await forget(stack.components)
    assert await remembered(stack.components) == ["event:Ev0NEW", "event:Ev0OLD"]

    stack.clock.advance(minutes=2)  # Ev0OLD 24 h 1 min, Ev0NEW 4 h 1 min
    await forget(stack.components)
    assert await remembered(stack.components) == ["event:Ev0NEW"]
    await deliver(stack, "Ev0NEW", retry_num=3)  # still recognised as a retry
    await stack.drain()
    assert len(stack.emulator.calls_to("views.publish")) == 2

    stack.clock.advance(hours=20)
    await forget(stack.components)
    assert await remembered(stack.components) == []


async def test_a_longer_retention_keeps_keys_longer(database_url: str) -> None:
    clock = FakeClock()
    settings = reliable_settings(database_url, "http://127.0.0.1:9/api/",
                                 dedup_retention_hours=48, pace_scale=1000.0)
    components = await build(settings, clock=clock)
    try:
        async with components.db.transaction() as tx:
            assert await tx.remember_delivery("event:Ev0KEEP", clock())
        clock.advance(hours=47)
        await forget(components)
        assert await remembered(components) == ["event:Ev0KEEP"]
        clock.advance(hours=2)
        await forget(components)
        assert await remembered(components) == []
    finally:
        await components.close()


def test_a_retention_under_a_day_is_refused() -> None:
    with pytest.raises(ValidationError, match="dedup_retention_hours"):
        ReliabilityConfig(dedup_retention_hours=12)


async def test_a_backlog_longer_than_a_slice_is_forgotten_slice_by_slice(
    database_url: str,
) -> None:
    clock = FakeClock()
    settings = reliable_settings(database_url, "http://127.0.0.1:9/api/", pace_scale=1000.0)
    components = await build(settings, clock=clock)
    try:
        old = [f"event:Ev{n:05d}" for n in range(FORGET_SLICE * 2 + 7)]
        async with components.db.transaction() as tx:
            await tx.session.execute(insert(SlackDeliveryRow),
                                     [{"key": key, "received_at": clock()} for key in old])
        clock.advance(hours=25)
        async with components.db.transaction() as tx:
            assert await tx.remember_delivery("event:Ev0FRESH", clock())
            # One slice never takes more than its limit.
            assert await tx.forget_deliveries(clock() - timedelta(hours=24), limit=10) == 10
        await forget(components)
        assert await remembered(components) == ["event:Ev0FRESH"]
    finally:
        await components.close()
