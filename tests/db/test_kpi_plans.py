"""The report and status queries use their indexes (migrations 0003 and 0007) on both databases.

Every SELECT the report and status run is captured as executed, then EXPLAINed with the same
parameters. PostgreSQL plans a small table with a sequential scan, so sequential scans are
switched off there: the check is that the index *can* serve each query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from bot.services.context import Services
from bot.services.reports import build_report, parse_period, team_status
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database
from tests.kpi_seed import NOW, UTC_ZONE, seed
from tests.stack import FakeClock


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    engine = make_engine(database_url)
    await upgrade(engine)
    db = Database(engine)
    yield Services(db=db, clock=FakeClock(NOW))
    await db.dispose()


async def captured(services: Services) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
             _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and '"case"' in statement:
            statements.append((statement, parameters))

    # Reads run on the snapshot engine (on a SQLite file, not the write engine).
    engines = {services.db.engine.sync_engine, services.db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", grab)
    try:
        await build_report(services, parse_period("7d", NOW, UTC_ZONE),
                           sla_target=timedelta(hours=1))
        await team_status(services)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", grab)
    return statements


async def plans(services: Services, statements: list[tuple[str, Any]]) -> list[str]:
    out = []
    async with services.db.engine.connect() as conn:
        if services.db.dialect == "postgresql":
            await conn.exec_driver_sql("SET enable_seqscan = off")
            prefix = "EXPLAIN "
        else:
            prefix = "EXPLAIN QUERY PLAN "
        for statement, parameters in statements:
            result = await conn.exec_driver_sql(prefix + statement, parameters)
            out.append(" | ".join(str(row[-1]) for row in result))
    return out


async def test_report_and_status_queries_use_their_indexes(services: Services) -> None:
    await seed(services)
    statements = await captured(services)
    assert len(statements) >= 7  # report: several per period; status: 4 or more
    explained = await plans(services, statements)
    for (statement, _), plan in zip(statements, explained, strict=True):
        if "published_at >=" in statement:
            assert "ix_case_report" in plan, (statement, plan)
        elif services.db.dialect == "sqlite" and "sla_due_at <=" in statement:
            assert "ix_case_state_sla" in plan, plan
        elif services.db.dialect == "sqlite" and "GROUP BY \"case\".state" in statement:
            # Open cases by state and assignee: the index's own order, nothing sorted.
            assert "COVERING INDEX ix_case_state_assignee" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        elif services.db.dialect == "sqlite" and ".state IN" in statement:
            assert "ix_case_state" in plan or "ix_case_assignee_state" in plan, plan
        # PostgreSQL costs a handful of rows without statistics: any index will do there.
        assert "ix_" in plan or "SEARCH" in plan, (statement, plan)
        assert "SCAN case" not in plan.replace("SCAN case USING", ""), (statement, plan)
        assert "Seq Scan on \"case\"" not in plan and "Seq Scan on case" not in plan, plan


async def test_report_reads_stored_kpis_from_the_index_only(services: Services) -> None:
    """No report query recomputes a KPI from timestamps, and on SQLite each reads the period
    from the covering index alone (the table is never visited)."""
    await seed(services)
    statements = [(s, p) for s, p in await captured(services) if "published_at >=" in s]
    assert statements
    explained = await plans(services, statements)
    for (statement, _), plan in zip(statements, explained, strict=True):
        assert "julianday" not in statement and "EXTRACT" not in statement.upper(), statement
        if services.db.dialect == "sqlite":
            assert "USING COVERING INDEX ix_case_report" in plan, (statement, plan)
        else:
            assert "Index Only Scan using ix_case_report" in plan or \
                "Bitmap Index Scan on ix_case_report" in plan, (statement, plan)


async def test_sqlite_plan_reads_the_period_from_the_covering_index(database_url: str
                                                                    ) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's covering-index wording")
    engine = make_engine(database_url)
    await upgrade(engine)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                'EXPLAIN QUERY PLAN SELECT source, assignee, outcome, sentiment, count(*), '
                'sum(first_response_seconds), sum(resolution_seconds), sum(lag_seconds), '
                'sum(within_sla), count(sla_due_at) FROM "case" WHERE published_at >= :a AND '
                'published_at < :b GROUP BY source, assignee, outcome, sentiment'),
                {"a": "2026-11-01", "b": "2026-12-01"})
            plan = " | ".join(str(r[-1]) for r in rows)
        assert "USING COVERING INDEX ix_case_report" in plan
    finally:
        await engine.dispose()
