"""Engine construction: SQLite gets WAL and immediate write transactions (deferred for read
snapshots), PostgreSQL a pool."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.sqlite_inline import inline_creator

READ_ONLY = "mentiondesk_read_only"
"""Execution option marking a read-only transaction (SQLite: `BEGIN DEFERRED`)."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str | URL) -> str | None:
    """The file a SQLite URL names (None: another database, or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for `url`.

    SQLite: WAL so readers never block the writer, a busy timeout, and `BEGIN IMMEDIATE` so
    concurrent writers queue instead of failing when a read transaction upgrades. A file
    database runs its statements on the loop's thread (db/sqlite_inline.py); scans belong
    on `make_reader`'s engine.
    """
    path = sqlite_file(url)
    if path is not None:
        engine = create_async_engine(url, echo=echo, async_creator=inline_creator(path))
        sqlite_pragmas(engine.sync_engine, busy_ms=0)
        return engine
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        sqlite_pragmas(engine.sync_engine)
        return engine
    # A process frozen inside a transaction (SIGSTOP, a stalled VM) must not hold its row
    # locks forever: the server ends such a transaction, and waiters give up and retry.
    settings = {"idle_in_transaction_session_timeout": "10000", "lock_timeout": "5000"}
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=10,
                               pool_pre_ping=True, connect_args={"server_settings": settings})


def make_reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine read snapshots use: on a SQLite file, aiosqlite's thread, so a report's
    scan never holds the event loop; elsewhere `engine` itself."""
    if sqlite_file(engine.url) is None:
        return engine
    reader = create_async_engine(engine.url, echo=engine.echo, connect_args={"timeout": 30})
    sqlite_pragmas(reader.sync_engine)
    return reader


def sqlite_pragmas(engine: Engine, *, busy_ms: int = 30_000) -> None:
    """WAL, busy timeout, foreign keys, and `BEGIN IMMEDIATE` (DEFERRED for snapshots) on
    every connection of `engine` (the async engine's, or db/sqlite_writer.py's). `busy_ms`
    is 0 where the driver waits for the lock itself (db/sqlite_inline.py)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read snapshot (`Database.snapshot`) must not take the write lock: a long report
        # would queue every writer behind it, and parallel reads would run one at a time.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
