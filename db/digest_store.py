"""Queries behind storm digests (see bot/digests.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update

from db.models import CaseRow, DigestMemberRow, DigestRow, MentionRow, OutboxRow
from db.store import Tx

CARD_POST = "card.post"


async def card_backlog(tx: Tx) -> dict[str, int]:
    """Card posts not yet made, per channel."""
    stmt = (
        select(CaseRow.channel, func.count())
        .select_from(OutboxRow)
        .join(CaseRow, CaseRow.id == OutboxRow.case_id)
        .where(OutboxRow.kind == CARD_POST, OutboxRow.status.in_(["pending", "leased"]))
        .group_by(CaseRow.channel)
    )
    return {str(channel): int(count) for channel, count in await tx.session.execute(stmt)}


async def newest_pending_posts(tx: Tx, channel: str, limit: int) -> list[tuple[int, int]]:
    """(outbox id, case id) of the newest pending card posts of a channel, locked."""
    stmt = (
        select(OutboxRow.id, OutboxRow.case_id)
        .join(CaseRow, CaseRow.id == OutboxRow.case_id)
        .where(OutboxRow.kind == CARD_POST, OutboxRow.status == "pending",
               CaseRow.channel == channel)
        .order_by(OutboxRow.id.desc())
        .limit(limit)
    )
    if tx.dialect == "postgresql":
        stmt = stmt.with_for_update(of=OutboxRow, skip_locked=True)
    return [(int(o), int(c)) for o, c in await tx.session.execute(stmt)]


async def create_digest(
    tx: Tx, channel: str, posts: Sequence[tuple[int, int]], topic: str, urgent: int,
    page_size: int, now: datetime,
) -> DigestRow:
    """Turn these card posts into one digest: the rows are settled, the cases listed."""
    digest = DigestRow(channel=channel, topic=topic, size=len(posts), urgent=urgent,
                       created_at=now)
    tx.session.add(digest)
    await tx.session.flush()
    assert digest.id is not None
    ordered = sorted(posts, key=lambda p: p[1])
    tx.session.add_all(
        DigestMemberRow(case_id=case_id, digest_id=digest.id, page=index // page_size)
        for index, (_, case_id) in enumerate(ordered)
    )
    await tx.session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_([o for o, _ in posts]), OutboxRow.status == "pending")
        .values(status="done", done_at=now, last_error=f"digested into #{digest.id}")
        .execution_options(synchronize_session=False)
    )
    await tx.session.flush()
    return digest


async def texts_and_priorities(tx: Tx, case_ids: Sequence[int]) -> list[tuple[str, str]]:
    stmt = (
        select(MentionRow.text, CaseRow.priority)
        .join(CaseRow, CaseRow.mention_id == MentionRow.id)
        .where(CaseRow.id.in_(list(case_ids)))
    )
    return [(str(t), str(p)) for t, p in await tx.session.execute(stmt)]


async def get_digest(tx: Tx, digest_id: int) -> DigestRow | None:
    stmt = select(DigestRow).where(DigestRow.id == digest_id)
    return (await tx.session.execute(stmt.execution_options(populate_existing=True))
            ).scalars().first()


async def page_cases(tx: Tx, digest_id: int, page: int) -> list[tuple[CaseRow, MentionRow]]:
    stmt = (
        select(CaseRow, MentionRow)
        .join(DigestMemberRow, DigestMemberRow.case_id == CaseRow.id)
        .join(MentionRow, MentionRow.id == CaseRow.mention_id)
        .where(DigestMemberRow.digest_id == digest_id, DigestMemberRow.page == page)
        .order_by(CaseRow.id)
    )
    return [(c, m) for c, m in await tx.session.execute(stmt)]


async def digest_of_case(tx: Tx, case_id: int) -> DigestRow | None:
    stmt = (
        select(DigestRow)
        .join(DigestMemberRow, DigestMemberRow.digest_id == DigestRow.id)
        .where(DigestMemberRow.case_id == case_id)
    )
    return (await tx.session.execute(stmt)).scalars().first()


async def set_digest(tx: Tx, digest_id: int, **values: object) -> None:
    await tx.session.execute(
        update(DigestRow).where(DigestRow.id == digest_id).values(**values)
        .execution_options(synchronize_session=False))


async def page_count(tx: Tx, digest_id: int) -> int:
    stmt = select(func.max(DigestMemberRow.page)).where(DigestMemberRow.digest_id == digest_id)
    last = (await tx.session.execute(stmt)).scalar()
    return 0 if last is None else int(last) + 1
