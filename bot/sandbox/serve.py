"""`mentiondesk run` without Slack credentials: the bot, unchanged, in a local workspace.

One process holds three things, all on 127.0.0.1: the Slack emulator with the page (on
`PORT`), the bot's own HTTP server (on a free port, reached only by the emulator) and the
demo feed. The bot gets a generated signing secret and bot token and talks to the emulator
through `SLACK_API_URL`, exactly as it talks to Slack.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bot.connectors.demo import DEFAULT_PACE_SECONDS, DemoConnector
from bot.domain.mention import SourceKind
from bot.sandbox.demo import DemoFeed
from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.page import SandboxPage
from bot.settings import DEFAULT_DATABASE_URL, Settings, parse_file_config

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# The people of the sandbox workspace (see bot/sandbox/state.py): ann and bob are agents,
# lea is the lead who approves replies.
SANDBOX_CONFIG: dict[str, Any] = {
    "slack": {
        "mentions_channel": "C0MENTIONS",
        "approvals_channel": "C0APPROVALS",
        "alerts_channel": "C0ALERTS",
        "leads": ["U0LEAD1"],
    },
    "brand": {"name": "Northwind"},
    "sources": [{"name": "demo", "kind": "demo", "pace_seconds": DEFAULT_PACE_SECONDS}],
}


def sandbox_settings(settings: Settings, *, api_url: str, signing_secret: str,
                     bot_token: str, database_url: str) -> Settings:
    """The admin's settings with the sandbox's Slack side and sources.

    Templates, triage and SLA settings stay the admin's own; the Slack channels and leads are
    the sandbox workspace's; the sources are the admin's demo sources, else the bundled one
    (real networks would need credentials the sandbox does not have).
    """
    bundled = parse_file_config(SANDBOX_CONFIG, origin="sandbox")
    own_demo = [s for s in settings.file.sources if s.kind is SourceKind.DEMO]
    brand = settings.file.brand
    if brand == type(settings.file)().brand:
        brand = bundled.brand
    file = settings.file.model_copy(update={
        "slack": bundled.slack,
        "sources": own_demo or bundled.sources,
        "brand": brand,
    })
    env = settings.env.model_copy(update={
        "slack_bot_token": SecretStr(bot_token),
        "slack_signing_secret": SecretStr(signing_secret),
        "slack_app_token": None,
        "slack_api_url": api_url,
        "database_url": database_url,
        "host": LOOPBACK,
    })
    return settings.model_copy(update={"env": env, "file": file})


def _explicit_database(settings: Settings) -> bool:
    return ("DATABASE_URL" in settings.secrets
            or settings.env.database_url != DEFAULT_DATABASE_URL)


async def run_sandbox(settings: Settings, stop: asyncio.Event,
                      announce: Callable[[str], None] | None = None) -> int:
    """Serve the sandbox until `stop` is set. `announce` receives the page's address."""
    from bot.web import create_app
    from bot.wiring import build

    async with AsyncExitStack() as exits:
        database_url = settings.env.database_url
        if not _explicit_database(settings):
            # A fresh workspace each run: the emulator forgets its messages on exit, so the
            # cases behind them must not outlive it either.
            folder = exits.enter_context(tempfile.TemporaryDirectory(prefix="mentiondesk-"))
            database_url = f"sqlite+aiosqlite:///{Path(folder) / 'sandbox.db'}"
        signing_secret = secrets.token_hex(16)
        bot_token = f"xoxb-sandbox-{secrets.token_hex(12)}"
        emulator = SlackEmulator(signing_secret=signing_secret, bot_token=bot_token)
        exits.push_async_callback(emulator.stop)
        bundled_leads = SANDBOX_CONFIG["slack"]["leads"]
        page = SandboxPage(emulator, leads=bundled_leads)
        page.attach(emulator.app)
        api_url = await emulator.start(LOOPBACK, settings.env.port)
        page_url = emulator.base_url

        local = sandbox_settings(settings, api_url=api_url, signing_secret=signing_secret,
                                 bot_token=bot_token, database_url=database_url)
        components = await build(local)
        runner = web.AppRunner(create_app(components, background=True), access_log=None,
                               handle_signals=False, shutdown_timeout=5)
        await runner.setup()
        exits.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, LOOPBACK, 0).start()
        host, port = runner.addresses[0][:2]
        emulator.request_url = f"http://{host}:{port}/slack/events"

        tasks = []
        for connector in components.connectors.values():
            if isinstance(connector, DemoConnector):
                page.add_sink(connector.sink)
                feed = DemoFeed(connector, components.services, components.dispatcher.wake)
                tasks.append(asyncio.create_task(feed.run(stop)))

        (announce or _print)(page_url)
        log.info("sandbox bot listening on http://%s:%s/ (loopback only)", host, port)
        await stop.wait()
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
    return 0


def _print(url: str) -> None:
    print(f"mentiondesk sandbox (no Slack credentials set): open {url}", flush=True)
    print("stop it with Ctrl-C; set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to use Slack",
          file=sys.stderr, flush=True)
