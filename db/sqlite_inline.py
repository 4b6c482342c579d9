"""SQLite for the asyncio engine, executed on the event loop's own thread.

The aiosqlite driver sends every cursor call (execute, fetch, close), the BEGIN and the
COMMIT to the connection's thread and waits for the answer. On these 2-core machines one
such hop costs ~100 µs, and a write transaction makes 10 to 40 of them, while SQLite does
the work itself in a few µs a statement: a one-mention ingest spent 11 ms, nearly all of it
hopping. Here the same SQLAlchemy dialect drives a `sqlite3` connection directly, so a
statement costs what SQLite costs.

Only short transactions belong here, since a statement holds the loop while it runs: the
engine built with it serves write transactions (indexed lookups and inserts), and read
snapshots, which can scan for reports, stay on aiosqlite's thread (db/store.py).

The one wait that can be long, another process holding the write lock, does not block the
loop: the connection's busy timeout is zero and a busy statement is retried after an
`asyncio.sleep`, doubling from 1 ms to 50 ms, for up to `busy_seconds`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_BUSY = ("database is locked", "database is busy", "database table is locked")


class InlineCursor:
    """The part of aiosqlite's cursor SQLAlchemy's async adapter calls, run in place."""

    def __init__(self, owner: InlineConnection) -> None:
        self._owner = owner
        self._cursor = owner._conn.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None
                      ) -> InlineCursor:
        await self._owner.run(self._cursor.execute, sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]
                          ) -> InlineCursor:
        await self._owner.run(self._cursor.executemany, sql, list(parameters))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Immediate:
    """Stands in for aiosqlite's request queue: SQLAlchemy sets the isolation level by
    queueing a function for the connection's thread; here it runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(error)


class InlineConnection:
    """The part of aiosqlite's connection SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, conn: sqlite3.Connection, busy_seconds: float) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn
        self._tx = _Immediate()
        self._busy_seconds = busy_seconds

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, retried while another process holds the lock it needs."""
        deadline: float | None = None
        pause = 0.001
        while True:
            try:
                return call(*args)
            except sqlite3.OperationalError as error:
                if not str(error).startswith(_BUSY):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._busy_seconds
                if now >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(path: str, *, busy_seconds: float = 30.0
                   ) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine` that opens `path` in place."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from a finaliser.
        conn = sqlite3.connect(path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        return InlineConnection(conn, busy_seconds)

    return connect
