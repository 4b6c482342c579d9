"""Source leases: exactly one poller per source across processes, with fencing.

A lease row names its holder, a fence token and an expiry. Acquire and renew are single
compare-and-set statements, so they behave the same on SQLite and PostgreSQL. The fence grows
on every takeover; work done under a lease is committed only if `hold_fence` still finds the
same holder and fence *in the committing transaction*, so a holder frozen past its expiry
cannot commit after another process took over (on PostgreSQL the check also locks the row, so
a takeover waits for that commit and then reads the cursor it wrote).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from db.models import SourceLeaseRow
from db.store import Database, Tx

RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


class LeaseLost(Exception):
    """The lease changed hands (or expired and was taken over); the work must not commit."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: `fence` identifies this tenure; a takeover always gets a larger one."""

    name: str
    holder: str
    fence: int
    expires_at: datetime


async def acquire_lease(
    db: Database, name: str, holder: str, now: datetime, ttl: timedelta
) -> Lease | None:
    """Take the lease when it is free or expired, or renew it when we hold it.

    Returns the lease held (the fence unchanged on renewal, incremented on takeover), or None
    when another holder's lease is still running.
    """
    until = now + ttl
    async with db.transaction() as tx:
        insert = (pg_insert if tx.dialect == "postgresql" else sqlite_insert)(SourceLeaseRow)
        created = await tx.session.execute(
            insert.values(name=name, holder=holder, fence=1, expires_at=until)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        if created.rowcount:  # type: ignore[attr-defined]
            return Lease(name, holder, 1, until)
        renewed = await tx.session.execute(
            update(SourceLeaseRow)
            .where(SourceLeaseRow.name == name, SourceLeaseRow.holder == holder,
                   SourceLeaseRow.expires_at >= now)
            .values(expires_at=until)
            .returning(SourceLeaseRow.fence)
            .execution_options(synchronize_session=False)
        )
        fence = renewed.scalar_one_or_none()
        if fence is not None:
            return Lease(name, holder, int(fence), until)
        taken = await tx.session.execute(
            update(SourceLeaseRow)
            .where(SourceLeaseRow.name == name, SourceLeaseRow.expires_at < now)
            .values(holder=holder, fence=SourceLeaseRow.fence + 1, expires_at=until)
            .returning(SourceLeaseRow.fence)
            .execution_options(synchronize_session=False)
        )
        fence = taken.scalar_one_or_none()
        return Lease(name, holder, int(fence), until) if fence is not None else None


async def renew_lease(db: Database, lease: Lease, now: datetime, ttl: timedelta) -> Lease | None:
    """Extend a held lease; None when it was taken over meanwhile (the fence moved on)."""
    until = now + ttl
    async with db.transaction() as tx:
        result = await tx.session.execute(
            update(SourceLeaseRow)
            .where(SourceLeaseRow.name == lease.name, SourceLeaseRow.holder == lease.holder,
                   SourceLeaseRow.fence == lease.fence)
            .values(expires_at=until)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
    return Lease(lease.name, lease.holder, lease.fence, until)


async def release_lease(db: Database, lease: Lease) -> None:
    """Give the lease up at shutdown so another process takes over without waiting."""
    async with db.transaction() as tx:
        await tx.session.execute(
            update(SourceLeaseRow)
            .where(SourceLeaseRow.name == lease.name, SourceLeaseRow.holder == lease.holder,
                   SourceLeaseRow.fence == lease.fence)
            .values(expires_at=RELEASED)
            .execution_options(synchronize_session=False)
        )


async def hold_fence(tx: Tx, lease: Lease) -> None:
    """Inside the transaction that commits work done under `lease`: raise `LeaseLost` unless
    the lease still has this holder and fence. The no-op update locks the row until commit."""
    result = await tx.session.execute(
        update(SourceLeaseRow)
        .where(SourceLeaseRow.name == lease.name, SourceLeaseRow.holder == lease.holder,
               SourceLeaseRow.fence == lease.fence)
        .values(fence=SourceLeaseRow.fence)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise LeaseLost(f"lease on {lease.name!r} is no longer held with fence {lease.fence}")


async def current_lease(db: Database, name: str) -> SourceLeaseRow | None:
    """The lease row as stored (for status pages and tests)."""
    async with db.transaction() as tx:
        result = await tx.session.execute(
            select(SourceLeaseRow).where(SourceLeaseRow.name == name)
            .execution_options(populate_existing=True)
        )
        return result.scalars().first()
