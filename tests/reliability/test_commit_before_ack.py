"""What Slack sends is on record before Slack hears back.

Bolt sends the HTTP 200 when a listener calls `ack()`; the listeners that change state call
their service (one committed transaction) first. These tests hold the case row locked from a
second transaction while a person clicks: the 200 must not arrive while the change cannot
commit, and once it arrives the change is in the database. A listener that acknowledged
first would answer within milliseconds, inside the observation window, and fail here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from sqlalchemy import select, text

from bot.sandbox.client import BotResponse
from bot.slack.ids import ACTION_CLAIM, ACTION_CLOSE
from db.models import CaseRow, OutboxRow
from db.store import Tx
from tests.scenarios.test_claim_flow import button, case_row, mention
from tests.stack import ANN, MENTIONS, Stack

HELD = 1.0  # seconds the row stays locked; Bolt acknowledges in about 10 ms once asked


@asynccontextmanager
async def case_locked(stack: Stack, case_id: int) -> AsyncIterator[Tx]:
    """A write lock on the case: its row on PostgreSQL, the database on SQLite (whose
    transactions all begin IMMEDIATE)."""
    async with stack.components.db.transaction() as tx:
        stmt = select(CaseRow.state).where(CaseRow.id == case_id).with_for_update()
        assert (await tx.session.execute(stmt)).scalar_one() is not None
        yield tx


async def answered_only_after_commit(stack: Stack, request: Awaitable[BotResponse]) -> None:
    task: asyncio.Task[BotResponse] = asyncio.ensure_future(request)
    async with case_locked(stack, 1) as tx:
        done, _ = await asyncio.wait({task}, timeout=HELD)
        assert not done, "Slack got its 200 before the change could be committed"
        assert (await tx.get_case(1)).case.state == "new"  # type: ignore[union-attr]
    response = await task
    assert response.status == 200


async def _card(stack: Stack) -> tuple[str, str]:
    status, _ = await stack.post_webhook(json.dumps(mention()).encode())
    assert status == 200
    await stack.drain()
    card = stack.cards()[0]
    return card.ts, button(card, "Claim")["value"]


async def test_claim_is_committed_when_the_200_arrives(stack: Stack) -> None:
    ts, value = await _card(stack)
    await answered_only_after_commit(
        stack, stack.emulator.click(ANN, MENTIONS, ts, ACTION_CLAIM, value))
    case = await case_row(stack, 1)
    assert (case.state, case.assignee) == ("claimed", ANN)


async def test_close_submission_is_committed_when_the_200_arrives(stack: Stack) -> None:
    ts, value = await _card(stack)
    await stack.emulator.click(ANN, MENTIONS, ts, ACTION_CLOSE, value)
    view = stack.emulator.open_views(ANN)[-1]
    await answered_only_after_commit(
        stack, stack.emulator.submit_view(ANN, view.id, {"outcome": {"value": "no_action"}}))
    case = await case_row(stack, 1)
    assert (case.state, case.outcome) == ("closed", "no_action")


async def test_home_open_is_queued_when_the_200_arrives(stack: Stack) -> None:
    """Bolt acks an event before its listener runs, so the event's effect (the Home publish)
    must be committed before Bolt sees it: while the outbox cannot be written, no 200.
    (PostgreSQL tells the two apart: a listener that queued the publish after the ack would
    answer here. On SQLite one lock covers every table.)"""
    async with stack.components.db.transaction() as tx:
        if tx.dialect == "postgresql":
            await tx.session.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
        else:  # the first statement begins IMMEDIATE: the database's write lock
            await tx.session.execute(text("SELECT 1"))
        task = asyncio.ensure_future(stack.emulator.open_home(ANN))
        done, _ = await asyncio.wait({task}, timeout=HELD)
        assert not done, "Slack got its 200 before the event was on record"
    assert (await task).status == 200
    async with stack.components.db.transaction() as tx:
        kinds = [row.kind for row in (await tx.session.execute(select(OutboxRow))).scalars()]
    assert kinds.count("home.publish") == 1
