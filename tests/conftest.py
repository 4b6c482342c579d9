"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and the
running stack (the real aiohttp app with Bolt, talking to the Slack emulator over loopback)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import make_engine
from db.migrate import upgrade
from db.store import Database
from tests import secret_scan
from tests.scenarios.reply_sink import ReplySink, reply_sink
from tests.stack import WEBHOOK_SECRET, Stack, start_stack


def pytest_configure(config: pytest.Config) -> None:
    secret_scan.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    secret_scan.report(session)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist: each worker's log scan joins the run's total."""
    secret_scan.take_from_worker(getattr(node, "workeroutput", {}) or {})

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real network access fails loudly: only loopback addresses may be reached in tests."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise ConnectionRefusedError(f"tests may not reach {host}")
        return original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


def _backends() -> list[object]:
    marks = []
    if not PG_URL and not os.environ.get("CI"):
        # Outside CI a developer may lack PostgreSQL; CI never skips (the fixture fails).
        marks.append(pytest.mark.skip(reason="TEST_DATABASE_URL is not set"))
    return ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, *marks])]


@pytest.fixture(params=_backends())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'mentiondesk.db'}"
        return
    if not PG_URL:
        pytest.fail("CI must run the PostgreSQL tests: TEST_DATABASE_URL is not set")
    async with fresh_postgres() as url:
        yield url


class fresh_postgres:
    """A throwaway PostgreSQL database created from TEST_DATABASE_URL and dropped after."""

    def __init__(self) -> None:
        base = make_url(PG_URL)
        self.name = f"md_{uuid.uuid4().hex[:12]}"
        self.admin = base.set(drivername="postgresql+asyncpg")
        self.url = self.admin.set(database=self.name).render_as_string(hide_password=False)

    async def __aenter__(self) -> str:
        engine = create_async_engine(self.admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        await engine.dispose()
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        engine = create_async_engine(self.admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await engine.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The migrated database on each backend, for tests below the services."""
    engine = make_engine(database_url)
    await upgrade(engine)
    database = Database(engine)
    yield database
    await database.dispose()


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path) as running:
        yield running


@pytest.fixture
async def sink() -> AsyncIterator[ReplySink]:
    """A local webhook-reply endpoint that checks the bot's signature and records replies."""
    async with reply_sink(WEBHOOK_SECRET.encode()) as running:
        yield running


@pytest.fixture
async def rstack(database_url: str, tmp_path: Path, sink: ReplySink) -> AsyncIterator[Stack]:
    """The stack with replies to webhook sources going to `sink`."""
    async with start_stack(database_url, tmp_path, reply_url=sink.url) as running:
        yield running
