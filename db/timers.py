"""SLA timer rows: arming, cancelling and claiming, each a compare-and-set inside a `Tx`.

A timer moves `pending → fired` or `pending → cancelled` exactly once: the UPDATE checks the
status it read, so two workers (or a worker restarted mid-round) can never fire it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update

from bot.domain.lifecycle import OPEN_STATES
from db.models import CaseRow, SlaTimerRow
from db.store import Tx, outbox_insert, outbox_values

NUDGE = "nudge"
ESCALATE = "escalate"
OPEN = [s.value for s in OPEN_STATES]


@dataclass(frozen=True, slots=True)
class CaseToArm:
    case_id: int
    priority: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class DueTimer:
    timer_id: int
    case_id: int
    kind: str
    live: bool  # False: the case was answered or closed meanwhile
    breach_at: datetime | None


async def cases_to_arm(tx: Tx, limit: int) -> list[CaseToArm]:
    """Open, unanswered cases without timers, or whose priority changed before escalation."""
    timer = SlaTimerRow.__table__.alias("t")
    stmt = (
        select(CaseRow.id, CaseRow.priority, CaseRow.published_at)
        .outerjoin(timer, and_(timer.c.case_id == CaseRow.id, timer.c.kind == ESCALATE))
        .where(
            CaseRow.state.in_(OPEN),
            CaseRow.first_reply_at.is_(None),
            CaseRow.group_id.is_(None),  # a group's members wait on their lead's SLA
            or_(timer.c.id.is_(None),
                and_(timer.c.status == "pending", timer.c.priority != CaseRow.priority)),
        )
        .order_by(CaseRow.id)
        .limit(limit)
    )
    return [CaseToArm(int(i), str(p), at) for i, p, at in await tx.session.execute(stmt)]


async def upsert_timer(tx: Tx, case_id: int, kind: str, priority: str, due_at: datetime,
                       now: datetime, *, cancelled: bool = False) -> None:
    """Create the timer, or move a still-pending one to its new due time."""
    values: dict[str, Any] = {
        "case_id": case_id, "kind": kind, "priority": priority, "due_at": due_at,
        "status": "cancelled" if cancelled else "pending", "created_at": now,
        "cancelled_at": now if cancelled else None,
    }
    stmt = tx._insert(SlaTimerRow).values(values)
    pending = SlaTimerRow.__table__.c.status == "pending"
    stmt = stmt.on_conflict_do_update(
        index_elements=["case_id", "kind"],
        set_={"priority": priority, "due_at": due_at, "status": values["status"],
              "cancelled_at": values["cancelled_at"]},
        where=pending,
    )
    await tx.session.execute(stmt)


async def set_sla_due(tx: Tx, case_id: int, due_at: datetime) -> None:
    await tx.set_case_fields(case_id, sla_due_at=due_at)


async def due_timers(tx: Tx, now: datetime, limit: int) -> list[DueTimer]:
    """Pending timers whose time has come, with whether their case still needs a reply."""
    stmt = (
        select(SlaTimerRow.id, SlaTimerRow.case_id, SlaTimerRow.kind, CaseRow.state,
               CaseRow.first_reply_at, CaseRow.sla_due_at, CaseRow.group_id)
        .join(CaseRow, CaseRow.id == SlaTimerRow.case_id)
        .where(SlaTimerRow.status == "pending", SlaTimerRow.due_at <= now)
        .order_by(SlaTimerRow.due_at, SlaTimerRow.id)
        .limit(limit)
    )
    if tx.dialect == "postgresql":
        stmt = stmt.with_for_update(of=SlaTimerRow, skip_locked=True)
    return [
        DueTimer(int(tid), int(cid), str(kind),
                 state in OPEN and first_reply is None and group is None, breach)
        for tid, cid, kind, state, first_reply, breach, group in await tx.session.execute(stmt)
    ]


async def settle_timer(tx: Tx, timer_id: int, status: str, now: datetime) -> bool:
    """pending → fired | cancelled; False when someone else settled it first."""
    column = "fired_at" if status == "fired" else "cancelled_at"
    stmt = (
        update(SlaTimerRow)
        .where(SlaTimerRow.id == timer_id, SlaTimerRow.status == "pending")
        .values(status=status, **{column: now})
        .execution_options(synchronize_session=False)
    )
    return bool((await tx.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def timers_of(tx: Tx, case_id: int) -> list[SlaTimerRow]:
    stmt = select(SlaTimerRow).where(SlaTimerRow.case_id == case_id).order_by(SlaTimerRow.kind)
    return list((await tx.session.execute(stmt)).scalars())


async def enqueue_at(tx: Tx, kind: str, *, available_at: datetime, now: datetime,
                     dedup_key: str, payload: dict[str, Any], case_id: int | None = None
                     ) -> None:
    """An outbox row that waits until `available_at` (debounced effects); a pending row with
    the same key makes this a no-op."""
    values = outbox_values(kind, now=now, available_at=available_at, case_id=case_id,
                           payload=payload, dedup_key=dedup_key)
    await tx.session.execute(outbox_insert(tx.dialect).values(values))
