"""P4: the ingest pipeline (parse, dedup, triage, persist, outbox) on prebuilt mentions.

In-process, through the composition root and `ingest_batch`: webhook bodies are parsed and
ingested micro-batched (one transaction per batch) and one transaction per mention. The
reference is the straightforward baseline from the same libraries: one ORM insert and commit
per mention, with none of the pipeline. One in twenty mentions is sent twice (dedup).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.context import Context, in_process
from bench.core import Recorder, at_least
from bench.load import mention
from bench.procs import SOURCE
from bot.connectors.generic import parse_webhook_mentions
from bot.domain.mention import Mention
from bot.services.ingest import ingest_batch
from bot.wiring import Components
from db.models import MentionRow
from db.store import _mention_values

TITLE = "ingest pipeline (parse, dedup, triage, persist, outbox)"
BATCH = 500
REFERENCE = "one ORM commit per mention"
TARGETS = {"sqlite": 5000, "postgres": 10000}


def _bodies(tag: str, count: int, batch: int) -> list[bytes]:
    """Webhook bodies of `batch` mentions; every 20th mention repeats an earlier one."""
    items = [mention(tag, i - 1 if i % 20 == 19 else i, lane=i % 5) for i in range(count)]
    return [json.dumps(items[s:s + batch]).encode() for s in range(0, count, batch)]


def _parse(raw: bytes) -> list[Mention]:
    return [m for m in parse_webhook_mentions(raw) if isinstance(m, Mention)]


async def _pipeline(components: Components, bodies: list[bytes]) -> float:
    began = time.perf_counter()
    for raw in bodies:
        await ingest_batch(components.services, _parse(raw), source_name=SOURCE)
    return time.perf_counter() - began


async def _orm_baseline(components: Components, bodies: list[bytes]) -> float:
    """The library defaults: a plain async engine (aiosqlite / asyncpg) on the same database."""
    engine = create_async_engine(components.db.engine.url)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    began = time.perf_counter()
    try:
        for raw in bodies:
            for item in _parse(raw):
                async with sessions() as session:
                    session.add(MentionRow(**_mention_values(item, SOURCE, datetime.now(UTC))))
                    try:
                        await session.commit()
                    except Exception:  # the repeated mention: a unique-key violation
                        await session.rollback()
        return time.perf_counter() - began
    finally:
        await engine.dispose()


async def _backend(ctx: Context, rec: Recorder, backend: str) -> None:
    batched_n = ctx.profile.pick(100, 1_500, 50_000)
    single_n = ctx.profile.pick(20, 200, 5_000)
    async with in_process(ctx, backend) as components:
        warm = ctx.profile.pick(20, 200, 200)
        await _pipeline(components, _bodies(f"w{backend}", warm, BATCH))
        for run_no in range(ctx.profile.repeats):
            batched = _bodies(f"b{run_no}", batched_n, BATCH)
            singles = _bodies(f"s{run_no}", single_n, 1)
            baseline = _bodies(f"o{run_no}", single_n, 1)
            batched_rate = batched_n / await _pipeline(components, batched)
            single_rate = single_n / await _pipeline(components, singles)
            orm_rate = single_n / await _orm_baseline(components, baseline)
            ctx.log(f"{backend} run {run_no + 1}: batched {batched_rate:.0f}/s, one "
                    f"transaction each {single_rate:.0f}/s, ORM baseline {orm_rate:.0f}/s")
            rec.add(f"{backend}: micro-batched ({BATCH}/tx)", "mentions/s", batched_rate,
                    target=at_least(TARGETS[backend]), reference=REFERENCE,
                    ref_value=orm_rate)
            rec.add(f"{backend}: one transaction per mention", "mentions/s", single_rate,
                    target=at_least(500), reference=REFERENCE, ref_value=orm_rate)
    rec.note(f"{backend}: {batched_n:,} mentions micro-batched and {single_n:,} one at a "
             "time per run, 5% repeats, triage on; the outbox rows are written, not sent")


async def run(ctx: Context, rec: Recorder) -> None:
    for backend in ctx.backends():
        await _backend(ctx, rec, backend)
    if "postgres" not in ctx.backends():
        rec.note("PostgreSQL figures skipped: no --postgres / TEST_DATABASE_URL")
