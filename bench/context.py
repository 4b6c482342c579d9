"""What a benchmark gets: its profile, a scratch directory, fresh databases and a fake Slack."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.core import Profile
from bench.procs import BOT_TOKEN, CHANNELS, SIGNING_SECRET, WEBHOOK_SECRET, write_config
from bot.sandbox.emulator import SlackEmulator
from bot.settings import Environment, Settings, load_file_config
from bot.wiring import Components, build


@dataclass(slots=True)
class Context:
    profile: Profile
    workdir: Path
    postgres_url: str | None

    def log(self, text: str) -> None:
        print(f"    {text}", file=sys.stderr, flush=True)

    def backends(self) -> list[str]:
        return ["sqlite", "postgres"] if self.postgres_url else ["sqlite"]

    @asynccontextmanager
    async def database(self, backend: str = "sqlite") -> AsyncIterator[str]:
        """A fresh, empty database: a new SQLite file, or a new PostgreSQL database that is
        dropped afterwards."""
        if backend == "sqlite":
            path = self.workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
            yield f"sqlite+aiosqlite:///{path}"
            return
        if not self.postgres_url:
            raise RuntimeError("no PostgreSQL: pass --postgres or set TEST_DATABASE_URL")
        admin = make_url(self.postgres_url).set(drivername="postgresql+asyncpg")
        name = f"mdbench_{uuid.uuid4().hex[:10]}"
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        await engine.dispose()
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await engine.dispose()


@asynccontextmanager
async def in_process(ctx: Context, backend: str) -> AsyncIterator[Components]:
    """The product's components on a fresh database, in this process (for benchmarks that
    time a service call rather than a request); Slack is unreachable and never called."""
    async with ctx.database(backend) as url:
        env = Environment(slack_bot_token=SecretStr(BOT_TOKEN),
                          slack_signing_secret=SecretStr(SIGNING_SECRET),
                          slack_api_url="http://127.0.0.1:9/api/", database_url=url)
        settings = Settings(env=env, file=load_file_config(write_config(ctx.workdir)),
                            secrets={"BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET})
        components = await build(settings)
        try:
            yield components
        finally:
            await components.close()


@asynccontextmanager
async def fake_slack() -> AsyncIterator[SlackEmulator]:
    """The product's Slack emulator on loopback, with the benchmark channels added."""
    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    for index, channel in enumerate(CHANNELS[1:], start=1):
        emulator.add_channel(channel, f"bench-{index}")
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
