"""Database behaviour on SQLite and PostgreSQL: the claim race, atomic audit, dedup, outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.lifecycle import Actor, Role
from bot.domain.mention import Author, Mention
from bot.services.cases import AlreadyClaimed, claim_mention
from bot.services.context import Services
from bot.services.ingest import ingest_batch
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    engine = make_engine(database_url)
    await upgrade(engine)
    db = Database(engine)
    yield Services(db=db, clock=lambda: NOW)
    await db.dispose()


def mention(n: int, text: str = "hello") -> Mention:
    return Mention(source="x", external_id=str(n), text=text,
                   created_at=NOW - timedelta(minutes=5), author=Author(handle=f"@u{n}"))


async def test_fifty_concurrent_claims_have_exactly_one_winner(services: Services) -> None:
    result = await ingest_batch(services, [mention(1)], source_name="x")
    case_id = result.created[0]
    agents = [Actor(f"U{i:03d}", Role.AGENT) for i in range(50)]
    outcomes = await asyncio.gather(
        *(claim_mention(services, case_id, a) for a in agents), return_exceptions=True
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, AlreadyClaimed)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 49
    winner = winners[0].case.assignee
    assert all(loser.assignee == winner for loser in losers)
    async with services.db.transaction() as tx:
        events = await tx.audit_events(case_id)
    assert [(e.action, e.actor) for e in events] == [("ingest", "mentiondesk"), ("claim", winner)]


async def test_state_change_and_audit_commit_together_or_not_at_all(services: Services) -> None:
    result = await ingest_batch(services, [mention(1)], source_name="x")
    case_id = result.created[0]

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with services.db.transaction() as tx:
            record = await tx.get_case(case_id)
            assert record is not None
            assert await tx.compare_and_set(case_id, record.case.version, state="claimed")
            await tx.audit(case_id=case_id, actor="U1", action="claim", at=NOW)
            raise Boom
    async with services.db.transaction() as tx:
        record = await tx.get_case(case_id)
        events = await tx.audit_events(case_id)
    assert record is not None and record.case.state == "new"
    assert [e.action for e in events] == ["ingest"]


async def test_duplicates_are_never_stored_twice(services: Services) -> None:
    first = await ingest_batch(services, [mention(1), mention(2)], source_name="x")
    again = await ingest_batch(services, [mention(2), mention(3), mention(3)], source_name="x")
    assert len(first.created) == 2
    assert (len(again.created), again.duplicates) == (1, 2)
    async with services.db.transaction() as tx:
        assert await tx.count_by_state() == {"new": 3}
        assert (await tx.outbox_counts()) == {"pending": 3}


async def test_odd_text_is_stored_faithfully(services: Services) -> None:
    odd = "‮evil‬ 👩‍👩‍👧‍👦 <!channel> " + "x" * 100_000
    result = await ingest_batch(services, [mention(1, odd)], source_name="x")
    async with services.db.transaction() as tx:
        record = await tx.get_case(result.created[0])
    assert record is not None and record.mention.text == odd


async def test_outbox_lease_is_exclusive_and_fenced(services: Services) -> None:
    await ingest_batch(services, [mention(i) for i in range(10)], source_name="x")
    lease = timedelta(seconds=30)
    async with services.db.transaction() as tx:
        a = await tx.lease_outbox("a", NOW, lease, 6)
    async with services.db.transaction() as tx:
        b = await tx.lease_outbox("b", NOW, lease, 6)
    assert len(a) == 6 and len(b) == 4
    assert not {r.id for r in a} & {r.id for r in b}
    # After a's lease expires, c takes a row over; a can no longer settle it.
    later = NOW + lease + timedelta(seconds=1)
    async with services.db.transaction() as tx:
        c = await tx.lease_outbox("c", later, lease, 1)
    assert c[0].id == a[0].id
    async with services.db.transaction() as tx:
        assert not await tx.finish_outbox(a[0].id or 0, "a", status="done", now=later)
        assert await tx.finish_outbox(c[0].id or 0, "c", status="done", now=later)


async def test_a_read_snapshot_never_holds_up_a_writer(services: Services) -> None:
    """Reports read in snapshots; a long one must not queue ingest behind it (on SQLite a
    write transaction would take the database's only write lock)."""
    await ingest_batch(services, [mention(1)], source_name="x")
    async with services.db.snapshot() as reader:
        assert sum((await reader.count_by_state()).values()) == 1
        # Inside the open snapshot: a writer commits at once instead of waiting it out.
        written = await asyncio.wait_for(
            ingest_batch(services, [mention(2)], source_name="x"), timeout=10)
        assert len(written.created) == 1
    async with services.db.snapshot() as reader:
        assert sum((await reader.count_by_state()).values()) == 2
