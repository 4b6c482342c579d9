"""The whole bot on loopback for scenario tests: Slack emulator ⇄ aiohttp app with Bolt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from pydantic import SecretStr

from bot.connectors.signing import sign
from bot.sandbox.emulator import SlackEmulator
from bot.settings import (
    Environment,
    FileConfig,
    ReliabilityConfig,
    RepliesConfig,
    Settings,
    SlackConfig,
    SlaConfig,
    SourceConfig,
)
from bot.socket_mode import SocketModeGateway
from bot.triage.settings import TriageSettings
from bot.web import create_app
from bot.wiring import Components, build
from tests.loopback import serving

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-0000-token"
APP_TOKEN = "xapp-1-test-0000-token"
WEBHOOK_SECRET = "webhook-secret"
LEAD = "U0LEAD1"
ANN = "U0AGENT1"
BOB = "U0AGENT2"
MENTIONS = "C0MENTIONS"
APPROVALS = "C0APPROVALS"


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Stack:
    emulator: SlackEmulator
    components: Components
    url: str
    clock: FakeClock
    http: ClientSession

    async def drain(self) -> int:
        """Deliver every due outbox row (the dispatcher's work, run deterministically)."""
        return await self.components.dispatcher.drain()

    @asynccontextmanager
    async def queued_then_drained(self, timeout: float = 5.0) -> AsyncIterator[None]:  # noqa: ASYNC109
        """Around a request whose listener queues work after Slack's ack: wait until it has
        (the listener wakes the dispatcher), then deliver what is due."""
        waiter = self.components.dispatcher.next_wake()
        yield
        async with asyncio.timeout(timeout):
            await waiter
        await self.drain()

    async def open_home(self, user: str) -> None:
        """The user opens the App Home; the publish it queues is delivered."""
        async with self.queued_then_drained():
            response = await self.emulator.open_home(user)
            assert response.status == 200

    async def post_webhook(self, body: bytes, *, source: str = "web",
                           signature: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json",
                   "X-Mentiondesk-Signature": signature or sign(WEBHOOK_SECRET.encode(), body)}
        async with self.http.post(f"{self.url}webhooks/{source}", data=body,
                                headers=headers) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = await response.text()
            return response.status, payload

    def cards(self, channel: str = MENTIONS) -> list[Any]:
        return self.emulator.messages(channel)


def test_settings(database_url: str, api_url: str, reply_url: str | None = None,
                  *, socket_mode: bool = False, replies: dict[str, Any] | None = None,
                  sources: list[SourceConfig] | None = None,
                  secrets: dict[str, str] | None = None, sla: dict[str, Any] | None = None,
                  triage: dict[str, Any] | None = None,
                  **slack: Any) -> Settings:
    env = Environment(
        slack_bot_token=SecretStr(BOT_TOKEN),
        # Socket Mode needs no signing secret: leaving it out proves HTTP mode stays shut.
        slack_signing_secret=None if socket_mode else SecretStr(SIGNING_SECRET),
        slack_app_token=SecretStr(APP_TOKEN) if socket_mode else None,
        slack_api_url=api_url,
        database_url=database_url,
    )
    file = FileConfig(
        slack=SlackConfig(leads=[LEAD], **slack),
        replies=RepliesConfig(**(replies or {})),
        sla=SlaConfig.model_validate(sla or {}),
        triage=TriageSettings.model_validate(triage or {}),
        # Scenario tests do not measure Slack's pace (tests/reliability does).
        reliability=ReliabilityConfig(pace_scale=1000.0),
        sources=[SourceConfig(name="web", kind="generic", secret_env="WEB_SECRET",
                              reply_url=reply_url, reply_limit=500,
                              allow_private_url=True),  # the reply sink is on loopback
                 *(sources or [])],
    )
    return Settings(env=env, file=file, secrets={"WEB_SECRET": WEBHOOK_SECRET, **(secrets or {})})


@asynccontextmanager
async def start_stack(database_url: str, tmp_path: Path, reply_url: str | None = None,
                      *, socket_mode: bool = False, replies: dict[str, Any] | None = None,
                      sources: list[SourceConfig] | None = None,
                      secrets: dict[str, str] | None = None,
                      sla: dict[str, Any] | None = None, clock: FakeClock | None = None,
                      triage: dict[str, Any] | None = None,
                      **slack: Any) -> AsyncIterator[Stack]:
    """With `socket_mode`, Slack's requests travel over the bot's WebSocket, not HTTP."""
    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN,
                             app_token=APP_TOKEN)
    api_url = await emulator.start()
    clock = clock or FakeClock()
    components = await build(
        test_settings(database_url, api_url, reply_url, socket_mode=socket_mode,
                      replies=replies, sources=sources, secrets=secrets, sla=sla,
                      triage=triage, **slack),
        clock=clock)
    try:
        async with serving(create_app(components, background=False)) as base:
            url = f"{base}/"
            emulator.request_url = f"{url}slack/events"
            gateway = None
            if socket_mode:
                emulator.use_socket_mode()
                gateway = SocketModeGateway(components, APP_TOKEN)
                await gateway.start()
                await emulator.socket_mode.wait_connected()
            http = ClientSession()
            try:
                yield Stack(emulator=emulator, components=components, url=url, clock=clock,
                            http=http)
            finally:
                if gateway is not None:
                    await gateway.close()
                await http.close()
    finally:
        await emulator.stop()
