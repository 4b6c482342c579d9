"""The unit of work: one `Tx` per database transaction, with the queries the services need.

Concurrency is compare-and-set on `case.version`: zero rows updated means the race was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import String, and_, case, cast, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.domain.mention import Author, Mention
from db.engine import READ_ONLY, make_reader, sqlite_file
from db.models import (
    AuditEventRow,
    CaseRow,
    DraftRow,
    MentionRow,
    OutboxRow,
    SlackDeliveryRow,
    SourceCursorRow,
)
from db.sqlite_writer import SqliteWriter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredMention:
    """A mention ingest has just stored: its row id beside the parsed mention."""

    id: int
    mention: Mention
    author_handle: str
    """As stored (made safe for both databases)."""

    @property
    def source(self) -> str:
        return self.mention.source

    @property
    def external_id(self) -> str:
        return self.mention.external_id

    @property
    def in_reply_to(self) -> str | None:
        return self.mention.in_reply_to

    @property
    def published_at(self) -> datetime:
        return self.mention.created_at


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case with its mention, loaded together for rendering and guards."""

    case: CaseRow
    mention: MentionRow


class _WriteGate:
    """SQLite has one write lock per database. This process's writers take turns here, in
    arrival order, instead of polling for it in SQLite's busy handler, which sleeps up to
    100 ms between tries: at a few hundred writes a second those sleeps were the slowest
    acknowledgements. Reentrant per task, like opening a second transaction was before
    (nesting inside the first transaction's own task). Other processes still meet the busy
    handler; PostgreSQL needs no gate."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if not self.enabled or self._owner is task:
            yield
            return
        async with self._lock:
            self._owner = task
            try:
                yield
            finally:
                self._owner = None


class Database:
    """Owns the session factory. Built by the composition root, never at import time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._reader: AsyncEngine | None = None
        self._snapshots: async_sessionmaker[AsyncSession] | None = None
        self._gate = _WriteGate(enabled=self.dialect == "sqlite")
        self._writer: SqliteWriter | None = None

    @property
    def read_engine(self) -> AsyncEngine:
        """What read snapshots run on (db/engine.py `make_reader`), made on first use."""
        if self._reader is None:
            self._reader = make_reader(self.engine)
        return self._reader

    def write_gate(self) -> AbstractAsyncContextManager[None]:
        """This process's turn to write (SQLite; a no-op on PostgreSQL)."""
        return self._gate.held()

    def sqlite_writer(self) -> SqliteWriter | None:
        """The one-hop writer for hot write paths on a SQLite file (None on PostgreSQL)."""
        if sqlite_file(self.engine.url) is None:
            return None
        if self._writer is None:
            self._writer = SqliteWriter(self.engine.url)
        return self._writer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One transaction; commits on success, rolls back on any exception."""
        async with self._gate.held(), self._sessions() as session, session.begin():
            yield Tx(session, self.dialect)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Tx]:
        """A read-only transaction: one consistent view that never blocks a writer, so reports
        can run several at once beside the dispatcher (SQLite: a deferred WAL read; PostgreSQL:
        `READ ONLY`). Only for reads."""
        if self._snapshots is None:
            reader = self.read_engine.execution_options(**{READ_ONLY: True},
                                                        postgresql_readonly=True)
            self._snapshots = async_sessionmaker(reader, expire_on_commit=False)
        async with self._snapshots() as session, session.begin():
            yield Tx(session, self.dialect)

    async def retrying(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work` in one transaction, once more when the connection was dropped under it
        (the first query after a database restart fails even with pre-ping)."""
        for attempt in (1, 2):
            try:
                async with self.transaction() as tx:
                    return await work(tx)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OperationalError, InterfaceError, DBAPIError, OSError):
            return False
        return True

    async def dispose(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        if self._reader is not None and self._reader is not self.engine:
            await self._reader.dispose()
        await self.engine.dispose()


class Tx:
    """Queries inside one transaction."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.session = session
        self.dialect = dialect
        self._outbox_buffer: list[dict[str, Any]] | None = None
        self._audit_buffer: list[dict[str, Any]] | None = None
        self._connection: AsyncConnection | None = None

    def _insert(self, table: Any) -> Any:
        return insert_for(self.dialect, table)

    async def run(self, stmt: Any, params: Any = None) -> Any:
        """Execute a Core statement on the transaction's connection, past the ORM session:
        for the per-batch statements of ingest, whose rows are plain tuples, the session's
        ORM bookkeeping cost more than the database's work."""
        if self._connection is None:
            self._connection = await self.session.connection()
        return await self._connection.execute(stmt, params)

    # -- mentions and cases -------------------------------------------------------------
    async def insert_mentions(
        self, mentions: Sequence[Mention], source_name: str, now: datetime,
        extra_values: Sequence[dict[str, Any]] | None = None,
    ) -> list[StoredMention]:
        """Insert new mentions; (source, external_id) pairs seen before are skipped silently.
        `extra_values[i]` adds columns (triage signals) to the row of `mentions[i]`."""
        if not mentions:
            return []
        rows = [_mention_values(m, source_name, now) for m in mentions]
        for values, more in zip(rows, extra_values or (), strict=False):
            values.update(more)
        # Parameter lists, not one multi-row VALUES: the statement compiles once and is
        # cached, where a VALUES list compiled anew for every batch size.
        result_rows = await self.run(_mention_insert(self.dialect), rows)
        inserted = {(r.source, r.external_id): r.id for r in result_rows}
        result = []
        for mention, values in zip(mentions, rows, strict=True):
            row_id = inserted.pop((values["source"], values["external_id"]), None)
            if row_id is not None:
                result.append(StoredMention(row_id, mention, values["author_handle"]))
        return result

    async def insert_cases(self, cases: Sequence[dict[str, Any]]) -> list[int]:
        """New case rows (column values, one per mention); their ids, in the same order.
        One statement for the list, without building an ORM object per case."""
        if not cases:
            return []
        stmt = _case_insert(self.dialect)
        ids = {int(m): int(i) for i, m in await self.run(stmt, list(cases))}
        return [ids[int(values["mention_id"])] for values in cases]

    async def get_case(self, case_id: int) -> CaseRecord | None:
        stmt = (
            select(CaseRow, MentionRow)
            .join(MentionRow, MentionRow.id == CaseRow.mention_id)
            .where(CaseRow.id == case_id)
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(stmt)).first()
        return CaseRecord(case=row[0], mention=row[1]) if row else None

    async def compare_and_set(self, case_id: int, version: int, **values: Any) -> bool:
        """Update the case only if nobody changed it since `version` was read."""
        stmt = (
            update(CaseRow)
            .where(CaseRow.id == case_id, CaseRow.version == version)
            .values(version=CaseRow.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_case_fields(self, case_id: int, **values: Any) -> None:
        """Bookkeeping that is not a state change (message ts, reply error): no version bump."""
        stmt = update(CaseRow).where(CaseRow.id == case_id).values(**values)
        await self.session.execute(stmt.execution_options(synchronize_session=False))

    async def claim_message_ts(self, case_id: int, ts: str, now: datetime) -> bool:
        """Record the card's ts unless another dispatcher already recorded one (False)."""
        stmt = (update(CaseRow).where(CaseRow.id == case_id, CaseRow.message_ts.is_(None))
                .values(message_ts=ts, carded_at=now))
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def find_open_case_for_author_thread(
        self, source: str, author_handle: str, external_ids: Sequence[str]
    ) -> CaseRow | None:
        if not external_ids or not author_handle:
            return None
        stmt = (
            select(CaseRow)
            .join(MentionRow, MentionRow.id == CaseRow.mention_id)
            .where(
                MentionRow.source == source,
                MentionRow.external_id.in_(list(external_ids)),
                CaseRow.author_handle == author_handle,
            )
            .order_by(CaseRow.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def count_by_state(self) -> dict[str, int]:
        stmt = select(CaseRow.state, func.count()).group_by(CaseRow.state)
        return {str(s): int(c) for s, c in await self.session.execute(stmt)}

    async def oldest_in_state(self, state: str) -> CaseRow | None:
        """Grouped cases wait on their lead's card, so they are never the oldest."""
        stmt = (select(CaseRow).where(CaseRow.state == state, CaseRow.group_id.is_(None))
                .order_by(CaseRow.created_at).limit(1))
        return (await self.session.execute(stmt)).scalars().first()

    async def cases_of(self, user: str, states: Sequence[str], limit: int = 20) -> list[CaseRecord]:
        stmt = (
            select(CaseRow, MentionRow)
            .join(MentionRow, MentionRow.id == CaseRow.mention_id)
            .where(CaseRow.assignee == user, CaseRow.state.in_(list(states)))
            .order_by(CaseRow.created_at)
            .limit(limit)
        )
        return [CaseRecord(c, m) for c, m in await self.session.execute(stmt)]

    # -- audit --------------------------------------------------------------------------
    async def audit(
        self,
        *,
        case_id: int | None,
        actor: str,
        action: str,
        at: datetime,
        from_state: str | None = None,
        to_state: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """One audit event; inside `write_batch()` it is written with the batch's others."""
        values = {"case_id": case_id, "actor": actor, "action": action,
                  "from_state": from_state, "to_state": to_state, "at": at,
                  "payload": payload or {}}
        if self._audit_buffer is not None:
            self._audit_buffer.append(values)
            return
        self.session.add(AuditEventRow(**values))

    async def audit_events(self, case_id: int) -> list[AuditEventRow]:
        stmt = select(AuditEventRow).where(AuditEventRow.case_id == case_id)
        return list((await self.session.execute(stmt.order_by(AuditEventRow.id))).scalars())

    # -- drafts -------------------------------------------------------------------------
    async def add_draft(self, draft: DraftRow) -> DraftRow:
        self.session.add(draft)
        await self.session.flush()
        return draft

    async def get_draft(self, draft_id: int) -> DraftRow | None:
        return await self.session.get(DraftRow, draft_id)

    async def end_pending_drafts(self, case_id: int, status: str) -> list[int]:
        """End the case's pending drafts undecided (`superseded` by a newer draft, or
        `withdrawn` when the case closed); their ids, so their approval requests can say so."""
        stmt = select(DraftRow.id).where(DraftRow.case_id == case_id, DraftRow.status == "pending")
        ids = list((await self.session.execute(stmt)).scalars())
        if ids:
            await self.session.execute(
                update(DraftRow).where(DraftRow.id.in_(ids)).values(status=status)
            )
        return ids

    async def decide_draft(self, draft_id: int, status: str, **values: Any) -> bool:
        """Pending → approved/rejected exactly once."""
        stmt = (
            update(DraftRow)
            .where(DraftRow.id == draft_id, DraftRow.status == "pending")
            .values(status=status, **values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def set_draft_fields(self, draft_id: int, **values: Any) -> None:
        stmt = update(DraftRow).where(DraftRow.id == draft_id).values(**values)
        await self.session.execute(stmt.execution_options(synchronize_session=False))

    async def latest_draft(self, case_id: int) -> DraftRow | None:
        stmt = select(DraftRow).where(DraftRow.case_id == case_id).order_by(DraftRow.id.desc())
        return (await self.session.execute(stmt.limit(1))).scalars().first()

    # -- outbox -------------------------------------------------------------------------
    async def enqueue(
        self,
        kind: str,
        *,
        now: datetime,
        case_id: int | None = None,
        payload: dict[str, Any] | None = None,
        dedup_key: str | None = None,
    ) -> None:
        """Add an outbound effect; a `dedup_key` already present makes this a no-op. Inside
        `write_batch()` the row is written with the others when the batch ends."""
        values = outbox_values(kind, now=now, case_id=case_id, payload=payload,
                               dedup_key=dedup_key)
        if self._outbox_buffer is not None:
            self._outbox_buffer.append(values)
            return
        await self.session.execute(outbox_insert(self.dialect).values(values))

    @asynccontextmanager
    async def write_batch(self) -> AsyncIterator[None]:
        """Outbox rows and audit events made inside are written when the block ends, a
        statement per table for the lot (in order, so ids keep it): ingest makes one or
        more of each per mention, and a statement each cost more than the rest of the
        batch's writes."""
        self._outbox_buffer, self._audit_buffer = [], []
        try:
            yield
            audits, self._audit_buffer = self._audit_buffer, None
            if audits:
                await self.run(_audit_insert(self.dialect), audits)
            rows, self._outbox_buffer = self._outbox_buffer, None
            if rows:
                await self.run(outbox_insert(self.dialect), rows)
        finally:
            self._outbox_buffer = self._audit_buffer = None

    async def lease_outbox(
        self, owner: str, now: datetime, lease: timedelta, limit: int,
        per_lane: int | None = None,
    ) -> list[OutboxRow]:
        """Take due rows (and rows whose lease expired) for `owner`, oldest first.

        With `per_lane`, at most that many rows of one lane (an effect kind in one Slack
        channel) are taken: a channel with a long paced backlog cannot fill the batch and
        starve the others."""
        due = and_(
            OutboxRow.available_at <= now,
            or_(
                OutboxRow.status == "pending",
                and_(OutboxRow.status == "leased", OutboxRow.lease_until < now),
            ),
        )
        if per_lane is None:
            pick = select(OutboxRow.id).where(due).order_by(OutboxRow.id).limit(limit)
        else:
            lane = case((CaseRow.channel.is_(None), cast(OutboxRow.id, String)),
                        else_=CaseRow.channel)
            ranked = (
                select(OutboxRow.id.label("id"),
                       func.row_number().over(partition_by=(OutboxRow.kind, lane),
                                              order_by=OutboxRow.id).label("n"))
                .select_from(OutboxRow)
                .outerjoin(CaseRow, CaseRow.id == OutboxRow.case_id)
                .where(due)
                .subquery()
            )
            chosen = (select(ranked.c.id).where(ranked.c.n <= per_lane)
                      .order_by(ranked.c.id).limit(limit))
            pick = select(OutboxRow.id).where(OutboxRow.id.in_(chosen)).order_by(OutboxRow.id)
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = list((await self.session.execute(pick)).scalars())
        if not ids:
            return []
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids))
            .values(status="leased", lease_owner=owner, lease_until=now + lease,
                    lease_token=OutboxRow.lease_token + 1)
            .execution_options(synchronize_session=False)
        )
        stmt = (select(OutboxRow).where(OutboxRow.id.in_(ids)).order_by(OutboxRow.id)
                .execution_options(populate_existing=True))
        return list((await self.session.execute(stmt)).scalars())

    async def case_channels(self, case_ids: Sequence[int]) -> dict[int, str]:
        if not case_ids:
            return {}
        stmt = select(CaseRow.id, CaseRow.channel).where(CaseRow.id.in_(list(case_ids)))
        return {int(i): str(c) for i, c in await self.session.execute(stmt)}

    async def hold_lane(
        self, kind: str, channel: str, after_id: int, until: datetime, owner: str,
        in_hand: Sequence[int],
    ) -> int:
        """Keep a channel's order: the row `after_id` waits until `until`, so nothing of the
        same kind behind it in that channel goes first. Rows this dispatcher holds are handed
        back; waiting rows are pushed back to `until`."""
        if in_hand:
            await self.session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(list(in_hand)), OutboxRow.lease_owner == owner,
                       OutboxRow.status == "leased")
                .values(status="pending", lease_owner=None, lease_until=None,
                        available_at=until)
                .execution_options(synchronize_session=False))
        in_channel = select(CaseRow.id).where(CaseRow.channel == channel)
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.kind == kind, OutboxRow.status == "pending",
                   OutboxRow.id > after_id, OutboxRow.available_at < until,
                   OutboxRow.case_id.in_(in_channel))
            .values(available_at=until)
            .execution_options(synchronize_session=False))
        return int(result.rowcount) + len(in_hand)  # type: ignore[attr-defined]

    async def hold_kind(self, kind: str, after_id: int, until: datetime) -> int:
        """Pending rows of `kind` behind `after_id` become due no earlier than `until`."""
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.kind == kind, OutboxRow.status == "pending",
                   OutboxRow.id > after_id, OutboxRow.available_at < until)
            .values(available_at=until)
            .execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def renew_lease(
        self, row_id: int, owner: str, token: int, now: datetime, until: datetime
    ) -> bool:
        """The fencing check before a side effect, which also extends the lease: False when
        the lease ran out or another dispatcher took the row over (a newer token)."""
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.lease_owner == owner,
                   OutboxRow.lease_token == token, OutboxRow.status == "leased",
                   OutboxRow.lease_until > now)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def finish_outbox(
        self, row_id: int, owner: str, *, status: str, now: datetime, **values: Any
    ) -> bool:
        """Settle a leased row; fails (False) when the lease was lost to another dispatcher."""
        token = values.pop("lease_token", None)
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.lease_owner == owner,
                   OutboxRow.status == "leased")
            .values(status=status, lease_owner=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        if token is not None:
            stmt = stmt.where(OutboxRow.lease_token == token)
        if status == "done":
            stmt = stmt.values(done_at=now)
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def absorb_updates(self, kind: str, case_id: int, keep_id: int, now: datetime) -> int:
        """Settle the other pending `kind` rows of a case: the one about to render the card's
        current state covers them (several updates of one card coalesce into the latest)."""
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.kind == kind, OutboxRow.case_id == case_id,
                   OutboxRow.status == "pending", OutboxRow.id != keep_id)
            .values(status="done", done_at=now, last_error="coalesced")
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def extend_leases(
        self, owner: str, row_ids: Sequence[int], now: datetime, until: datetime
    ) -> int:
        """Heartbeat for a batch in hand: leases still ours and still running are extended."""
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.id.in_(list(row_ids)), OutboxRow.lease_owner == owner,
                   OutboxRow.status == "leased", OutboxRow.lease_until > now)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def hand_back(self, owner: str, row_ids: Sequence[int] | None = None) -> int:
        """Return leased rows to the queue untouched (graceful shutdown)."""
        stmt = update(OutboxRow).where(OutboxRow.lease_owner == owner,
                                       OutboxRow.status == "leased")
        if row_ids is not None:
            stmt = stmt.where(OutboxRow.id.in_(list(row_ids)))
        stmt = stmt.values(status="pending", lease_owner=None, lease_until=None)
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def outbox_counts(self) -> dict[str, int]:
        stmt = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        return {str(s): int(c) for s, c in await self.session.execute(stmt)}

    # -- Slack deliveries and cursors ---------------------------------------------------
    async def remember_delivery(self, key: str, now: datetime) -> bool:
        """True the first time `key` is seen: a retried Slack request is applied only once."""
        stmt = deliveries_insert(self.dialect).values(key=key, received_at=now)
        return (await self.session.execute(stmt)).first() is not None

    async def forget_deliveries(self, before: datetime, limit: int = 5_000) -> int:
        """Drop up to `limit` dedup keys older than `before` (callers keep at least 24 h).
        An hour of keys at hundreds of events a second is a long delete; in slices of
        `limit`, each in its own transaction, nobody waits long behind it (on SQLite the
        statement runs on the event loop's thread)."""
        oldest = (select(SlackDeliveryRow.key)
                  .where(SlackDeliveryRow.received_at < before).limit(limit))
        stmt = delete(SlackDeliveryRow).where(SlackDeliveryRow.key.in_(oldest.scalar_subquery()))
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def get_cursor(self, source: str) -> SourceCursorRow | None:
        return await self.session.get(SourceCursorRow, source)

    async def save_cursor(self, source: str, cursor: str | None, now: datetime) -> None:
        row = await self.session.get(SourceCursorRow, source)
        if row is None:
            row = SourceCursorRow(source=source, updated_at=now)
            self.session.add(row)
        row.cursor = cursor
        row.updated_at = now
        # Health (failures, last success) is source health's to record, not the cursor's.
        await self.session.flush()


def insert_for(dialect: str, table: Any) -> Any:
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def outbox_values(kind: str, *, now: datetime, available_at: datetime | None = None,
                  case_id: int | None = None, payload: dict[str, Any] | None = None,
                  dedup_key: str | None = None) -> dict[str, Any]:
    """The columns of a new pending outbox row (due at `available_at`, else at once)."""
    return {"kind": kind, "case_id": case_id, "payload": payload or {},
            "dedup_key": dedup_key, "status": "pending", "attempts": 0,
            "available_at": available_at or now, "created_at": now}


# Statements ingest runs on every batch, built once per dialect: building one cost more
# than SQLite's work for it.
@lru_cache(maxsize=4)
def _mention_insert(dialect: str) -> Any:
    return (insert_for(dialect, MentionRow)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(MentionRow.id, MentionRow.source, MentionRow.external_id))


@lru_cache(maxsize=4)
def _case_insert(dialect: str) -> Any:
    return insert_for(dialect, CaseRow).returning(CaseRow.id, CaseRow.mention_id)


@lru_cache(maxsize=4)
def _audit_insert(dialect: str) -> Any:
    return insert_for(dialect, AuditEventRow)


@lru_cache(maxsize=4)
def outbox_insert(dialect: str) -> Any:
    """`INSERT … ON CONFLICT (dedup_key) DO NOTHING` for outbox rows: a row whose key is
    already queued is skipped (rows without a key never conflict). Executed with a list of
    rows it compiles once, whatever the batch size."""
    return insert_for(dialect, OutboxRow).on_conflict_do_nothing(index_elements=["dedup_key"])


@lru_cache(maxsize=4)
def deliveries_insert(dialect: str) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING key` for delivery keys: the keys it
    returns are the ones seen for the first time."""
    return (insert_for(dialect, SlackDeliveryRow)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(SlackDeliveryRow.key))


def _storable(text: str) -> str:
    """Text both databases accept: NUL and lone surrogates (from JSON `\\ud800` escapes)
    become U+FFFD instead of failing the whole batch."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _mention_values(mention: Mention, source_name: str, now: datetime) -> dict[str, Any]:
    return {
        "source": mention.source,
        "source_name": source_name,
        "external_id": mention.external_id,
        "url": mention.url,
        "author_handle": _storable(mention.author.handle),
        "author_name": _storable(mention.author.name),
        "author_followers": mention.author.followers,
        "author_verified": mention.author.verified,
        "text": _storable(mention.text),
        "lang": mention.lang,
        "in_reply_to": mention.in_reply_to,
        "thread_id": mention.thread_id,
        "published_at": mention.created_at,
        "received_at": now,
        "extra": dict(mention.extra),
    }


def mention_of(row: MentionRow) -> Mention:
    return Mention(
        source=row.source, external_id=row.external_id, text=row.text,
        created_at=row.published_at, url=row.url, in_reply_to=row.in_reply_to, lang=row.lang,
        thread_id=row.thread_id, extra=dict(row.extra),
        author=Author(handle=row.author_handle, name=row.author_name,
                      followers=row.author_followers, verified=row.author_verified),
    )
