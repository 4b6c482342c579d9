"""A whole SQLite write transaction in one hop to a thread, for event intake.

Through aiosqlite every statement, the BEGIN and the COMMIT is a round trip between the
event loop and the connection's thread, and each waits its turn on a loop that is busy
answering requests: a two-row transaction cost ~1 ms idle and over 6 ms under 200 requests
a second, while SQLite itself needs ~40 µs. Here the transaction runs start to finish on
one thread with SQLAlchemy's synchronous driver (same statements, same type handling, same
pragmas), so the loop waits for it once. Callers hold `Database.write_gate()` so the
process's writers still take turns. (The engine's other write transactions now skip the
hops altogether, db/sqlite_inline.py; event intake has not been moved onto that yet.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from db.engine import sqlite_pragmas

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, url: URL) -> None:
        # One connection, used only from this writer's one thread.
        self.engine = create_engine(
            url.set(drivername="sqlite"), poolclass=StaticPool,
            connect_args={"timeout": 30, "check_same_thread": False})
        sqlite_pragmas(self.engine)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` inside one transaction on the writer's thread; committed when it returns."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._tx, work)

    def _tx(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.engine.dispose()
