"""The per-case KPI columns (migration 0007) follow every write of the timestamps behind them,
on SQLite and PostgreSQL, and the migration fills them for cases that existed before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from alembic import command
from sqlalchemy import Connection, select

from db.engine import make_engine
from db.migrate import alembic_config, upgrade
from db.models import CaseRow, MentionRow
from db.store import Database

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


async def _new_case(db: Database, **values: object) -> int:
    async with db.transaction() as tx:
        mention = MentionRow(source="x", external_id=uuid4().hex, text="hi", published_at=T0,
                             received_at=T0)
        tx.session.add(mention)
        await tx.session.flush()
        case = CaseRow(mention_id=mention.id or 0, source="x", published_at=T0, created_at=T0,
                       updated_at=T0, **values)
        tx.session.add(case)
        await tx.session.flush()
        return case.id or 0


async def _kpis(db: Database, case_id: int) -> tuple[object, ...]:
    async with db.transaction() as tx:
        row = (await tx.session.execute(
            select(CaseRow.first_response_seconds, CaseRow.resolution_seconds,
                   CaseRow.lag_seconds, CaseRow.within_sla).where(CaseRow.id == case_id)
        )).one()
    return tuple(row)


async def test_columns_follow_each_transition(db: Database) -> None:
    case_id = await _new_case(db)
    assert await _kpis(db, case_id) == (None, None, None, None)
    async with db.transaction() as tx:
        await tx.set_case_fields(case_id, carded_at=T0 + timedelta(seconds=12.5))
        await tx.set_case_fields(case_id, sla_due_at=T0 + timedelta(hours=1))
    assert await _kpis(db, case_id) == (None, None, pytest.approx(12.5), None)
    async with db.transaction() as tx:
        await tx.set_case_fields(case_id, first_reply_at=T0 + timedelta(minutes=61))
        assert await tx.compare_and_set(case_id, 1, state="closed", outcome="resolved",
                                        closed_at=T0 + timedelta(hours=2))
    assert await _kpis(db, case_id) == (pytest.approx(3660), pytest.approx(7200),
                                        pytest.approx(12.5), 0)
    async with db.transaction() as tx:  # reopened: no longer resolved; the SLA stays missed
        assert await tx.compare_and_set(case_id, 2, state="new", outcome=None, closed_at=None)
    assert await _kpis(db, case_id) == (pytest.approx(3660), None, pytest.approx(12.5), 0)


async def test_closed_unanswered_within_the_due_time_meets_the_sla(db: Database) -> None:
    case_id = await _new_case(db, sla_due_at=T0 + timedelta(hours=1),
                              closed_at=T0 + timedelta(minutes=5), outcome="no_action")
    assert await _kpis(db, case_id) == (None, pytest.approx(300), None, 1)


def _downgrade(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0006")


async def test_migration_fills_the_columns_of_existing_cases(database_url: str) -> None:
    engine = make_engine(database_url)
    db = Database(engine)
    try:
        await upgrade(engine)
        case_id = await _new_case(db, carded_at=T0 + timedelta(seconds=30),
                                  first_reply_at=T0 + timedelta(minutes=10),
                                  sla_due_at=T0 + timedelta(minutes=15))
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        await upgrade(engine)
        assert await _kpis(db, case_id) == (pytest.approx(600), None, pytest.approx(30), 1)
    finally:
        await db.dispose()
