"""The in-place SQLite driver: another process's write lock is waited out without holding
the event loop, and a lock held too long fails the statement instead of hanging."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import make_engine, sqlite_pragmas
from db.sqlite_inline import inline_creator
from db.store import Database


@pytest.fixture
async def path(tmp_path: Path) -> AsyncIterator[Path]:
    file = tmp_path / "inline.db"
    setup = sqlite3.connect(file, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    setup.close()
    yield file


def other_process_writing(path: Path) -> sqlite3.Connection:
    """A second connection (as another process would have) holding the write lock."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO note (body) VALUES ('theirs')")
    return holder


async def bodies(db: Database) -> list[str]:
    async with db.snapshot() as tx:
        found = await tx.session.execute(text("SELECT body FROM note ORDER BY id"))
        return list(found.scalars())


async def test_a_write_waits_for_another_writer_while_the_loop_runs_on(path: Path) -> None:
    db = Database(make_engine(f"sqlite+aiosqlite:///{path}"))
    holder = other_process_writing(path)
    try:
        async def write() -> None:
            async with db.transaction() as tx:
                await tx.session.execute(text("INSERT INTO note (body) VALUES ('ours')"))

        writing = asyncio.create_task(write())
        # The loop is free while the write waits: a read snapshot completes meanwhile.
        async with db.snapshot() as tx:
            seen = (await tx.session.execute(text("SELECT count(*) FROM note"))).scalar_one()
        assert seen == 0
        assert not writing.done()
        holder.execute("COMMIT")
        await asyncio.wait_for(writing, timeout=30)
        assert await bodies(db) == ["theirs", "ours"]
    finally:
        holder.close()
        await db.dispose()


async def test_a_lock_held_past_the_busy_limit_fails_the_write(path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}",
                                 async_creator=inline_creator(str(path), busy_seconds=0.2))
    sqlite_pragmas(engine.sync_engine, busy_ms=0)
    db = Database(engine)
    holder = other_process_writing(path)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.transaction() as tx:
                await tx.session.execute(text("INSERT INTO note (body) VALUES ('ours')"))
        holder.execute("COMMIT")
        async with db.transaction() as tx:
            await tx.session.execute(text("INSERT INTO note (body) VALUES ('later')"))
        assert await bodies(db) == ["theirs", "later"]
    finally:
        holder.close()
        await db.dispose()


async def test_writes_run_on_the_loop_thread_and_reports_do_not(path: Path) -> None:
    """Writes are short and skip the thread hop; snapshots may scan, so they keep it."""
    db = Database(make_engine(f"sqlite+aiosqlite:///{path}"))
    try:
        async with db.transaction() as tx:
            raw = (await tx.session.connection()).sync_connection
            assert raw is not None
            driver = raw.connection.driver_connection
        assert type(driver).__name__ == "InlineConnection"
        async with db.snapshot() as tx:
            raw = (await tx.session.connection()).sync_connection
            assert raw is not None
            reader = raw.connection.driver_connection
        assert type(reader).__module__.startswith("aiosqlite")
    finally:
        await db.dispose()
