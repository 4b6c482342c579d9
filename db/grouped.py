"""Reads and writes on a group's member cases (cases with `group_id` set, no card of their own).

Members are received mentions (reports count them) but not work: the lead case carries the
SLA and the queue position, so the status and timer queries leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from bot.domain.lifecycle import OPEN_STATES, State
from db.models import CaseRow
from db.store import Tx

OPEN = sorted(s.value for s in OPEN_STATES)


@dataclass(frozen=True, slots=True)
class Member:
    case_id: int
    version: int
    state: str


async def open_members(tx: Tx, lead_id: int) -> list[Member]:
    """The group's members still open, locked on PostgreSQL until the transaction ends."""
    stmt = (
        select(CaseRow.id, CaseRow.version, CaseRow.state)
        .where(CaseRow.group_id == lead_id, CaseRow.state.in_(OPEN))
        .order_by(CaseRow.id)
    )
    if tx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    return [Member(int(i), int(v), str(s)) for i, v, s in await tx.session.execute(stmt)]


async def waiting_members(tx: Tx) -> int:
    """Unclaimed cases hidden behind a lead's card (members are only ever `new`)."""
    stmt = (select(func.count()).select_from(CaseRow)
            .where(CaseRow.group_id.is_not(None), CaseRow.state == State.NEW.value))
    return int((await tx.session.execute(stmt)).scalar_one())


async def leave_group(tx: Tx, case_id: int, lead_id: int, now: datetime) -> bool:
    """Take the case out of `lead_id`'s group; False when it is not (or no longer) in it."""
    stmt = (
        update(CaseRow)
        .where(CaseRow.id == case_id, CaseRow.group_id == lead_id)
        .values(group_id=None, updated_at=now, version=CaseRow.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool((await tx.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
