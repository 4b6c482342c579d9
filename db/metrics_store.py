"""Figures /metrics reads from the database on each scrape (true across all processes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from db.models import CaseRow, DigestRow, MentionRow, OutboxRow
from db.store import Tx


@dataclass(frozen=True, slots=True)
class Snapshot:
    mentions: int = 0
    cards: int = 0
    replies: int = 0
    digests: int = 0
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due: datetime | None = None


async def snapshot(tx: Tx) -> Snapshot:
    async def scalar(stmt: object) -> int:
        return int((await tx.session.execute(stmt)).scalar() or 0)  # type: ignore[call-overload]

    outbox = {
        (str(status), str(kind)): int(count)
        for status, kind, count in await tx.session.execute(
            select(OutboxRow.status, OutboxRow.kind, func.count())
            .where(OutboxRow.status != "done")
            .group_by(OutboxRow.status, OutboxRow.kind))
    }
    oldest = (await tx.session.execute(
        select(func.min(OutboxRow.created_at)).where(OutboxRow.status.in_(["pending", "leased"]))
    )).scalar()
    return Snapshot(
        mentions=await scalar(select(func.count()).select_from(MentionRow)),
        cards=await scalar(select(func.count()).select_from(CaseRow)
                           .where(CaseRow.message_ts.is_not(None))),
        replies=await scalar(select(func.count()).select_from(CaseRow)
                             .where(CaseRow.reply_ref.is_not(None))),
        digests=await scalar(select(func.count()).select_from(DigestRow)
                             .where(DigestRow.message_ts.is_not(None))),
        outbox=outbox,
        oldest_due=oldest,
    )
