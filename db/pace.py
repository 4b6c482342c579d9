"""Queries behind Slack pacing: one row per pacing key, shared by every process.

The row holds the key's theoretical arrival time (GCRA): a call conforms when it is no earlier
than `next_at - tolerance`; taking a slot moves `next_at` on by one interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from db.models import SlackPaceRow
from db.store import Tx


async def _locked(tx: Tx, key: str, now: datetime) -> SlackPaceRow:
    insert = tx._insert(SlackPaceRow).values(key=key, next_at=now)
    await tx.session.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
    stmt = select(SlackPaceRow).where(SlackPaceRow.key == key)
    if tx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    result = await tx.session.execute(stmt.execution_options(populate_existing=True))
    return result.scalar_one()


async def take_slot(
    tx: Tx, key: str, now: datetime, interval: timedelta, tolerance: timedelta,
    horizon: timedelta,
) -> tuple[datetime, bool]:
    """The earliest time a call under `key` may go; the slot is taken (True) only when that
    time is within `horizon` of now."""
    row = await _locked(tx, key, now)
    start = max(now, row.next_at - tolerance)
    if row.paused_until is not None:
        start = max(start, row.paused_until)
    if start - now > horizon:
        return start, False
    row.next_at = max(row.next_at, start) + interval
    await tx.session.flush()
    return start, True


async def pause(tx: Tx, key: str, until: datetime, now: datetime) -> None:
    """Slack said 429: nothing goes under `key` before `until`."""
    row = await _locked(tx, key, now)
    if row.paused_until is None or row.paused_until < until:
        row.paused_until = until
    await tx.session.flush()


async def paused_until(tx: Tx, key: str) -> datetime | None:
    stmt = select(SlackPaceRow.paused_until).where(SlackPaceRow.key == key)
    return (await tx.session.execute(stmt)).scalar()
