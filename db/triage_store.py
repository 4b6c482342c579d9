"""Queries triage needs, run inside the caller's transaction (`Tx`).

Kept apart from `db/store.py` so the triage pipeline's reads sit in one place: the author's
history, the recent cases grouping is rebuilt from, the shared spike state and what the
cards and alerts show about groups, customers and topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy import case as when

from bot.domain.lifecycle import OPEN_STATES, Outcome
from db.models import CaseRow, MentionRow, TriageStateRow
from db.store import CaseRecord, Tx

SPIKE_STATE = "spikes"
RECENT_TEXTS_PER_BATCH = 500


@dataclass(frozen=True, slots=True)
class AuthorCases:
    """Earlier cases of one author on one network (spam excluded)."""

    count: int = 0
    recent_texts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseHistory:
    """What a card says about the author's earlier cases."""

    count: int
    last_case_id: int | None = None
    last_outcome: str | None = None
    last_state: str | None = None
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecentCase:
    case_id: int
    group_id: int | None
    created_at: datetime
    source: str
    external_id: str
    text: str


def _not_spam() -> Any:
    return or_(CaseRow.outcome.is_(None), CaseRow.outcome != Outcome.SPAM.value)


_STATE = select(TriageStateRow.data).where(TriageStateRow.name == bindparam("name"))
_STATE_LOCKED = _STATE.with_for_update()
_LAST_CASE = select(func.max(CaseRow.id))
# Ingest runs these on every batch: built once (with bound parameters), since building a
# statement cost more than SQLite's work for it.


async def lock_state(tx: Tx, name: str, now: datetime) -> dict[str, Any]:
    """The named state, locked until the transaction ends, so ingests run one at a time.

    On PostgreSQL the row lock serialises every process; SQLite's `BEGIN IMMEDIATE` already
    lets one writer in at a time. The row is created the first time only.
    """
    pick = _STATE_LOCKED if tx.dialect == "postgresql" else _STATE
    found = (await tx.run(pick, {"name": name})).first()
    if found is None:
        stmt = tx._insert(TriageStateRow).values(name=name, data={}, updated_at=now)
        await tx.run(stmt.on_conflict_do_nothing(index_elements=["name"]))
        found = (await tx.run(pick, {"name": name})).one()
    return dict(found[0] or {})


async def last_case_id(tx: Tx) -> int:
    """The newest case's id (0 with none): grouping reads recent cases only past its own."""
    return int((await tx.run(_LAST_CASE)).scalar_one() or 0)


_SAVE_STATE = (
    update(TriageStateRow.__table__)
    .where(TriageStateRow.name == bindparam("state_name"))
    .values(data=bindparam("data"), updated_at=bindparam("updated_at"))
)


async def save_state(tx: Tx, name: str, data: dict[str, Any], now: datetime) -> None:
    await tx.run(_SAVE_STATE, {"state_name": name, "data": data, "updated_at": now})


_HANDLES = bindparam("handles", expanding=True)
_AUTHOR_COUNTS = (
    select(CaseRow.source, CaseRow.author_handle,
           func.sum(when((_not_spam(), 1), else_=0)), func.max(CaseRow.created_at))
    .where(CaseRow.author_handle.in_(_HANDLES))
    .group_by(CaseRow.source, CaseRow.author_handle)
)
_AUTHOR_TEXTS = (
    select(CaseRow.source, CaseRow.author_handle, MentionRow.text)
    .join(MentionRow, MentionRow.id == CaseRow.mention_id)
    .where(CaseRow.author_handle.in_(_HANDLES), CaseRow.created_at >= bindparam("since"))
    .order_by(CaseRow.id.desc())
    .limit(RECENT_TEXTS_PER_BATCH)
)


async def author_cases(
    tx: Tx, authors: Iterable[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], AuthorCases]:
    """Per (source, handle): how many earlier non-spam cases, and texts of the recent ones
    (read only when some author has a case since `since`)."""
    wanted = {(source, handle) for source, handle in authors if handle}
    if not wanted:
        return {}
    handles = sorted({handle for _, handle in wanted})
    counts: dict[tuple[str, str], int] = {}
    recent = False
    for source, handle, count, last in await tx.run(_AUTHOR_COUNTS, {"handles": handles}):
        counts[(str(source), str(handle))] = int(count or 0)
        recent = recent or (last is not None and last >= since)
    texts: dict[tuple[str, str], list[str]] = {}
    if recent:
        found = await tx.run(_AUTHOR_TEXTS, {"handles": handles, "since": since})
        for source, handle, text in found:
            texts.setdefault((str(source), str(handle)), []).append(str(text)[:2_000])
    return {
        key: AuthorCases(count=counts.get(key, 0), recent_texts=tuple(texts.get(key, ())))
        for key in wanted
    }


_RECENT = (
    select(CaseRow.id, CaseRow.group_id, CaseRow.created_at, MentionRow.source,
           MentionRow.external_id, MentionRow.text)
    .join(MentionRow, MentionRow.id == CaseRow.mention_id)
    .where(CaseRow.id > bindparam("after_id"), CaseRow.created_at >= bindparam("since"),
           MentionRow.spam.is_(False))
    .order_by(CaseRow.id.desc())
    .limit(bindparam("limit"))
)


async def recent_cases(
    tx: Tx, *, after_id: int, since: datetime, limit: int
) -> list[RecentCase]:
    """Cases newer than `after_id` created since `since` (spam left out), oldest first."""
    found = await tx.run(_RECENT, {"after_id": after_id, "since": since, "limit": limit})
    rows = [RecentCase(int(i), g, c, str(s), str(e), str(t)[:2_000])
            for i, g, c, s, e, t in found]
    rows.reverse()
    return rows


async def group_lead(tx: Tx, case_id: int) -> CaseRow | None:
    return await tx.session.get(CaseRow, case_id)


async def group_size(tx: Tx, lead_id: int) -> int:
    stmt = select(func.count()).select_from(CaseRow).where(CaseRow.group_id == lead_id)
    return int((await tx.session.execute(stmt)).scalar_one())


async def group_members(tx: Tx, lead_id: int, limit: int) -> list[CaseRecord]:
    """The newest `limit` cases grouped under `lead_id`."""
    stmt = (
        select(CaseRow, MentionRow)
        .join(MentionRow, MentionRow.id == CaseRow.mention_id)
        .where(CaseRow.group_id == lead_id)
        .order_by(CaseRow.id.desc())
        .limit(limit)
    )
    return [CaseRecord(c, m) for c, m in await tx.session.execute(stmt)]


async def case_history(tx: Tx, case: CaseRow) -> CaseHistory:
    """The author's cases before this one on the same network (grouped copies excluded)."""
    if not case.author_handle or case.id is None:
        return CaseHistory(count=0)
    where = (
        CaseRow.source == case.source,
        CaseRow.author_handle == case.author_handle,
        CaseRow.id < case.id,
        CaseRow.group_id.is_(None),
        _not_spam(),
    )
    count = int((await tx.session.execute(
        select(func.count()).select_from(CaseRow).where(*where))).scalar_one())
    if count == 0:
        return CaseHistory(count=0)
    last = (await tx.session.execute(
        select(CaseRow).where(*where).order_by(CaseRow.id.desc()).limit(1))).scalars().first()
    assert last is not None
    return CaseHistory(
        count=count,
        last_case_id=last.id,
        last_outcome=last.outcome,
        last_state=last.state,
        last_at=last.closed_at or last.created_at,
    )


async def topic_mentions(
    tx: Tx, topic: str, since: datetime, *, scan: int = 5_000
) -> list[CaseRecord]:
    """Non-spam mentions with a case received since `since` whose triage saw `topic`."""
    stmt = (
        select(CaseRow, MentionRow)
        .join(MentionRow, MentionRow.id == CaseRow.mention_id)
        .where(MentionRow.received_at >= since, MentionRow.spam.is_(False))
        .order_by(CaseRow.id.desc())
        .limit(scan)
    )
    found = []
    for case, mention in await tx.session.execute(stmt):
        topics = (mention.signals or {}).get("topics") or []
        if topic in topics:
            found.append(CaseRecord(case, mention))
    return found


def is_open(case: CaseRow) -> bool:
    return case.state in {state.value for state in OPEN_STATES}


def at_risk(case: CaseRow, levels: Sequence[str] = ("urgent", "high")) -> bool:
    """Open, important and nobody has it yet."""
    return case.state == "new" and case.priority in levels

