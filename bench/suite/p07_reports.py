"""P7: `/mentions status` and `/mentions report 30d` over a large case table.

The cases come from `bench/report_bench.py`'s bulk generator (a year of closed cases, 2 %
open, on the product's own schema); this module times the two calls the way the issue states
them: `team_status` (what `/mentions status` shows) as the 95th percentile of repeated calls,
`build_report` over 30 days once per run, beside a `COUNT(*)` of all cases.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bench import report_bench
from bench.context import Context
from bench.core import Recorder, at_most, percentile
from bot.services.context import Services
from bot.services.reports import build_report, parse_period, team_status
from db.engine import make_engine
from db.migrate import upgrade
from db.models import CaseRow
from db.store import Database

TITLE = "status and 30-day report over a large case table"
FULL_SCALE = 1_000_000
COUNT = "COUNT(*) of all cases"


async def _backend(ctx: Context, rec: Recorder, backend: str) -> None:
    """Cases from bench/report_bench.py's bulk generator, timed the way the issue states it:
    status p95 over repeated calls, the 30-day report per run."""
    cases = ctx.profile.pick(5_000, 200_000, FULL_SCALE)
    calls = ctx.profile.pick(5, 40, 100)
    now = report_bench.NOW
    async with ctx.database(backend) as url:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        began = time.perf_counter()
        if backend == "sqlite":
            path = Path(url.split("///", 1)[1])
            await asyncio.to_thread(report_bench.load_sqlite, path, cases)
        else:
            await report_bench.load_postgres(url, cases)
        ctx.log(f"{backend}: {cases:,} cases generated in {time.perf_counter() - began:.0f} s")
        db = Database(make_engine(url))
        services = Services(db=db, clock=lambda: now)
        try:
            await _time_calls(ctx, rec, backend, services, cases, calls)
        finally:
            await db.dispose()
    if cases < FULL_SCALE:
        rec.note(f"{backend}: {cases:,} generated cases in this mode; --full uses "
                 f"{FULL_SCALE:,}")


async def _time_calls(ctx: Context, rec: Recorder, backend: str, services: Services,
                      cases: int, calls: int) -> None:
    period = parse_period("30d", services.clock(), ZoneInfo("UTC"))
    await build_report(services, period)  # warms the caches, as a second ask would
    for _run in range(ctx.profile.repeats):
        status_ms, count_ms = [], []
        for _ in range(calls):
            began = time.perf_counter()
            await team_status(services)
            status_ms.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            async with services.db.transaction() as tx:
                await tx.session.execute(select(func.count()).select_from(CaseRow))
            count_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        await build_report(services, period)
        report_ms = (time.perf_counter() - began) * 1000
        ctx.log(f"{backend}: status p95 {percentile(status_ms, 95):.1f} ms, "
                f"report 30d {report_ms:.0f} ms over {cases:,} cases")
        rec.add(f"{backend}: status p95 ({cases:,} cases)", "ms", percentile(status_ms, 95),
                target=at_most(50), reference=COUNT, ref_value=percentile(count_ms, 95))
        rec.add(f"{backend}: report 30d ({cases:,} cases)", "ms", report_ms,
                target=at_most(300), reference=COUNT, ref_value=percentile(count_ms, 50))


async def run(ctx: Context, rec: Recorder) -> None:
    for backend in ctx.backends():
        await _backend(ctx, rec, backend)
