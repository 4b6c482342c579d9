"""`python -m bench.report_bench [--cases 1000000] [--postgres URL] [--only sqlite|postgres]
[--worst-case] [--runs 5]`

Generates a large case table with a fast bulk load (sqlite3 `executemany` in one transaction;
PostgreSQL `COPY`), then times `/mentions status` (`team_status`) and `/mentions report 30d`
(`build_report`) the way the product runs them, and prints the figures (median, min and max of
`--runs` reports; status as the 95th percentile of repeated calls). Generation time is printed
apart and is not part of any figure. The schema is the product's own (Alembic migrations):
its indexes, and its triggers that fill the per-case KPI columns (migration 0007) as rows load.

Shapes: by default a year of cases ending now (a large brand's year: 1,000,000 cases is
~2,700 a day, ~80,000 in 30 days); `--worst-case` puts every case inside the 30-day window.
PostgreSQL gets `VACUUM ANALYZE` after the load, as autovacuum would, so index-only scans see
an up-to-date visibility map; SQLite gets `ANALYZE` and a WAL checkpoint (the load's one
transaction went through the WAL; a running deployment keeps it a few MB).

Also the entry point for the benchmark suite's P7 (`run_for_suite`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.services.context import Services
from bot.services.reports import build_report, parse_period, team_status
from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAYS = 365
NETWORKS = ("x", "mastodon", "bluesky", "reddit", "rss", "hackernews")
AGENTS = tuple(f"U0AGENT{i:02d}" for i in range(20))
OUTCOMES = ("resolved", "resolved", "resolved", "answered", "no_action", "duplicate",
            "escalated")
SENTIMENTS = ("negative", "neutral", "positive")
BATCH = 20_000


WORST_CASE_DAYS = 29  # every case inside `report 30d` (which starts at midnight 29 days ago)


def _rows(count: int, seed: int = 7, days: int = DAYS
          ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(mention, case) pairs spread over `days`, newest at NOW; 2 % of the last 3 days open."""
    rnd = random.Random(seed)
    span = days * 86400
    for i in range(1, count + 1):
        published = NOW - timedelta(seconds=span * (count - i) / count + rnd.random())
        network = NETWORKS[i % len(NETWORKS)]
        agent: str | None = AGENTS[rnd.randrange(len(AGENTS))]
        carded = published + timedelta(seconds=rnd.uniform(1, 120))
        spam = rnd.random() < 0.05
        open_case = rnd.random() < 0.02 and published > NOW - timedelta(days=3)
        replied = not spam and rnd.random() < 0.7
        first_reply = published + timedelta(minutes=rnd.uniform(2, 600)) if replied else None
        closed = None if open_case else published + timedelta(minutes=rnd.uniform(30, 3000))
        state = ("claimed" if open_case else "closed")
        if open_case and rnd.random() < 0.3:
            state, agent = "new", None
        outcome = None if open_case else ("spam" if spam else OUTCOMES[i % len(OUTCOMES)])
        mention = {"id": i, "source": network, "source_name": network,
                   "external_id": str(i), "url": f"https://example.com/{i}",
                   "author_handle": f"@user{i % 50_000}", "author_name": "", "author_followers": 0,
                   "author_verified": False, "text": "mention text", "published_at": published,
                   "received_at": carded, "extra": "{}"}
        case = {"id": i, "mention_id": i, "source": network, "source_name": network,
                "author_handle": mention["author_handle"], "state": state, "version": 1,
                "assignee": agent, "outcome": outcome, "priority": "normal",
                "channel": "C0MENTIONS", "message_ts": None, "published_at": published,
                "created_at": carded, "updated_at": closed or carded, "carded_at": carded,
                "claimed_at": carded if agent else None, "first_reply_at": first_reply,
                "closed_at": closed, "sla_due_at": published + timedelta(hours=4),
                "sentiment": SENTIMENTS[i % 3]}
        yield mention, case


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _columns(conn: Any, table: str, wanted: dict[str, Any]) -> list[str]:
    present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    return [c for c in wanted if c in present]


def load_sqlite(path: Path, count: int, days: int = DAYS) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    rows = _rows(count, days=days)
    first_m, first_c = next(_rows(1))
    m_cols, c_cols = _columns(conn, "mention", first_m), _columns(conn, "case", first_c)
    m_sql = (f'INSERT INTO mention ({", ".join(m_cols)}) '
             f'VALUES ({", ".join("?" for _ in m_cols)})')
    c_sql = (f'INSERT INTO "case" ({", ".join(c_cols)}) '
             f'VALUES ({", ".join("?" for _ in c_cols)})')
    # Secondary indexes are dropped for the load and rebuilt from their own DDL afterwards
    # (much faster than maintaining them row by row); the KPI triggers stay and fire.
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name IN ('mention', 'case') AND sql IS NOT NULL").fetchall()
    with conn:
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        while True:
            chunk = [next(rows, None) for _ in range(BATCH)]
            chunk = [r for r in chunk if r is not None]
            if not chunk:
                break
            conn.executemany(m_sql, [[_sqlite_value(m[c]) for c in m_cols] for m, _ in chunk])
            conn.executemany(c_sql, [[_sqlite_value(c[k]) for k in c_cols] for _, c in chunk])
        for _name, sql in indexes:
            conn.execute(sql)
    conn.execute("ANALYZE")
    # The bulk load went through the WAL in one transaction; a running deployment's WAL
    # stays a few MB (P9), so the readers here should not search a WAL of the whole table.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def load_postgres(url: str, count: int, days: int = DAYS) -> None:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        async def columns(table: str, wanted: dict[str, Any]) -> list[str]:
            present = {r["column_name"] for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
                table)}
            return [c for c in wanted if c in present]

        first_m, first_c = next(_rows(1))
        m_cols, c_cols = await columns("mention", first_m), await columns("case", first_c)
        rows = _rows(count, days=days)
        # Secondary indexes (not those behind constraints) are rebuilt after the COPY.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename IN ('mention', 'case') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        while True:
            chunk = [r for r in (next(rows, None) for _ in range(BATCH)) if r is not None]
            if not chunk:
                break
            await conn.copy_records_to_table(
                "mention", records=[[m[c] for c in m_cols] for m, _ in chunk], columns=m_cols)
            await conn.copy_records_to_table(
                "case", records=[[c[k] for k in c_cols] for _, c in chunk], columns=c_cols)
        for table in ("mention", "case"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                               f"{count})")
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute('VACUUM ANALYZE mention')
        await conn.execute('VACUUM ANALYZE "case"')
    finally:
        await conn.close()


class _Clock:
    def __call__(self) -> datetime:
        return NOW


async def measure(url: str, runs: int = 5, status_calls: int = 40) -> dict[str, float]:
    """Milliseconds of the 30-day report (median, min, max of `runs`, after one warm-up run
    as a second ask would find the caches) and of status (median and 95th percentile)."""
    db = Database(make_engine(url))
    services = Services(db=db, clock=_Clock())
    try:
        status_ms, report_ms, report_cpu_ms = [], [], []
        period = parse_period("30d", NOW, ZoneInfo("UTC"))
        report = await build_report(services, period)
        for _ in range(runs):
            began, cpu = time.perf_counter(), time.process_time()
            report = await build_report(services, period)
            report_ms.append((time.perf_counter() - began) * 1000)
            report_cpu_ms.append((time.process_time() - cpu) * 1000)
        for _ in range(status_calls):
            began = time.perf_counter()
            await team_status(services)
            status_ms.append((time.perf_counter() - began) * 1000)
        status_ms.sort()
        return {"status_ms": statistics.median(status_ms),
                "status_p95_ms": status_ms[min(len(status_ms) - 1,
                                               math.ceil(0.95 * len(status_ms)) - 1)],
                "report_30d_ms": statistics.median(report_ms),
                "report_30d_min_ms": min(report_ms), "report_30d_max_ms": max(report_ms),
                # This process's CPU time: all of SQLite's work (it runs in-process), only the
                # client's share for PostgreSQL. Beside the wall time it shows CPU contention.
                "report_30d_cpu_ms": statistics.median(report_cpu_ms),
                "cases_in_30d": float(report.current.received)}
    finally:
        await db.dispose()


async def bench_sqlite(workdir: Path, count: int, days: int = DAYS, runs: int = 5
                       ) -> dict[str, float]:
    path = workdir / f"report-bench-{uuid.uuid4().hex[:8]}.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    began = time.perf_counter()
    await asyncio.to_thread(load_sqlite, path, count, days)
    load_s = time.perf_counter() - began
    return {"load_s": load_s, **await measure(url, runs)}


async def bench_postgres(admin_url: str, count: int, days: int = DAYS, runs: int = 5
                         ) -> dict[str, float]:
    admin = make_url(admin_url).set(drivername="postgresql+asyncpg")
    name = f"mdreport_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        began = time.perf_counter()
        await load_postgres(url, count, days)
        load_s = time.perf_counter() - began
        return {"load_s": load_s, **await measure(url, runs)}
    finally:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await engine.dispose()


def _print(backend: str, count: int, figures: dict[str, float]) -> None:
    print(f"{backend:9} {count:>9,} cases ({int(figures['cases_in_30d']):,} in 30 days)  "
          f"generated in {figures['load_s']:.0f} s  status median {figures['status_ms']:.1f} ms"
          f" p95 {figures['status_p95_ms']:.1f} ms  report 30d median "
          f"{figures['report_30d_ms']:.0f} ms (min {figures['report_30d_min_ms']:.0f}, max "
          f"{figures['report_30d_max_ms']:.0f}; this process's CPU "
          f"{figures['report_30d_cpu_ms']:.0f} ms)")


async def run_for_suite(ctx: Any, rec: Any) -> None:
    """P7 in `python -m bench`: the same measurement at the profile's scale."""
    from bench.core import at_most

    count = ctx.profile.pick(20_000, 200_000, 1_000_000)
    for backend in ctx.backends():
        if backend == "sqlite":
            figures = await bench_sqlite(ctx.workdir, count)
        else:
            figures = await bench_postgres(ctx.postgres_url, count)
        ctx.log(f"{backend}: status {figures['status_ms']:.1f} ms, report 30d "
                f"{figures['report_30d_ms']:.0f} ms over {count:,} cases")
        rec.add(f"{backend}: status p95 ({count:,} cases)", "ms", figures["status_p95_ms"],
                target=at_most(50))
        rec.add(f"{backend}: report 30d ({count:,} cases)", "ms", figures["report_30d_ms"],
                target=at_most(300))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_bench")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="admin URL of a PostgreSQL server (default TEST_DATABASE_URL)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--worst-case", action="store_true",
                        help="every case inside the 30-day window (default: a year of cases)")
    parser.add_argument("--runs", type=int, default=5, help="timed reports (median printed)")
    args = parser.parse_args(argv)
    days = WORST_CASE_DAYS if args.worst_case else DAYS

    async def go() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in (None, "sqlite"):
                _print("sqlite", args.cases, await bench_sqlite(Path(tmp), args.cases, days,
                                                                args.runs))
            if args.only in (None, "postgres"):
                if not args.postgres:
                    print("postgres: skipped (no --postgres or TEST_DATABASE_URL)",
                          file=sys.stderr)
                else:
                    _print("postgres", args.cases, await bench_postgres(
                        args.postgres, args.cases, days, args.runs))

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
