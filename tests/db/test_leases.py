"""Source leases on SQLite and PostgreSQL: one holder, takeover after expiry, fencing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.mention import Author, Mention
from bot.services.context import Services
from bot.services.ingest import ingest_batch
from db.leases import (
    LeaseLost,
    acquire_lease,
    current_lease,
    release_lease,
    renew_lease,
)
from db.models import MentionRow
from db.store import Database

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=10)


def mention(n: int) -> Mention:
    return Mention(source="mastodon", external_id=str(n), text=f"post {n}",
                   created_at=T0, author=Author(handle=f"@u{n}@example.social"))


async def test_first_acquirer_holds_and_others_wait(db: Database) -> None:
    a = await acquire_lease(db, "source:m", "a", T0, TTL)
    b = await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=5), TTL)

    assert a is not None and a.fence == 1 and a.holder == "a"
    assert b is None
    row = await current_lease(db, "source:m")
    assert row is not None and row.holder == "a"


async def test_renewal_keeps_the_fence_and_extends_expiry(db: Database) -> None:
    a = await acquire_lease(db, "source:m", "a", T0, TTL)
    again = await acquire_lease(db, "source:m", "a", T0 + timedelta(seconds=3), TTL)
    assert a is not None and again is not None
    renewed = await renew_lease(db, again, T0 + timedelta(seconds=6), TTL)

    assert again.fence == a.fence == 1
    assert renewed is not None and renewed.expires_at == T0 + timedelta(seconds=16)
    # Renewed in time, so b cannot take it at t=12 (a's first lease would have expired).
    assert await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=12), TTL) is None


async def test_dead_holder_is_taken_over_within_fifteen_seconds_with_a_new_fence(
    db: Database,
) -> None:
    a = await acquire_lease(db, "source:m", "a", T0, TTL)
    assert a is not None
    assert await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=9), TTL) is None

    b = await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=11), TTL)

    assert b is not None and b.holder == "b" and b.fence == 2
    # a comes back: its renewal fails, and it cannot re-take a running lease.
    assert await renew_lease(db, a, T0 + timedelta(seconds=12), TTL) is None
    assert await acquire_lease(db, "source:m", "a", T0 + timedelta(seconds=12), TTL) is None


async def test_stale_holder_cannot_commit_a_page_after_takeover(db: Database) -> None:
    services = Services(db=db, clock=lambda: T0)
    a = await acquire_lease(db, "source:m", "a", T0, TTL)
    assert a is not None
    await ingest_batch(services, [mention(1)], source_name="m", cursor=("m", "c1"), fence=a)
    # a freezes past its lease; b takes over and commits its own page.
    b = await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=20), TTL)
    assert b is not None and b.fence == a.fence + 1
    await ingest_batch(services, [mention(2)], source_name="m", cursor=("m", "c2"), fence=b)

    with pytest.raises(LeaseLost):
        await ingest_batch(services, [mention(3)], source_name="m", cursor=("m", "stale"),
                           fence=a)

    async with db.transaction() as tx:
        cursor = await tx.get_cursor("m")
        ids = sorted((await tx.session.execute(
            MentionRow.__table__.select())).scalars().all())  # type: ignore[attr-defined]
    assert cursor is not None and cursor.cursor == "c2"
    assert len(ids) == 2  # mention 3 was not stored


async def test_release_lets_another_holder_in_at_once(db: Database) -> None:
    a = await acquire_lease(db, "source:m", "a", T0, TTL)
    assert a is not None
    await release_lease(db, a)

    b = await acquire_lease(db, "source:m", "b", T0 + timedelta(seconds=1), TTL)

    assert b is not None and b.fence == 2


async def test_concurrent_takeovers_have_one_winner(db: Database) -> None:
    await acquire_lease(db, "source:m", "dead", T0, TTL)
    later = T0 + timedelta(seconds=30)

    results = await asyncio.gather(
        *(acquire_lease(db, "source:m", f"w{i}", later, TTL) for i in range(8)),
        return_exceptions=True,
    )

    won = [r for r in results if r is not None and not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert won[0].fence == 2
