"""Process modes: `run` (everything), `web` (HTTP only), `worker` (background only).

SIGTERM stops taking work, lets leases settle and exits within the platform's grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import suppress

from aiohttp import web

from bot.settings import Settings
from bot.wiring import build

log = logging.getLogger(__name__)
SHUTDOWN_SECONDS = 20


def serve(settings: Settings, *, mode: str) -> int:
    if settings.sandbox and mode in ("run", "web"):
        print(
            "mentiondesk: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set; set them "
            "(see README: Creating the Slack app) to connect to Slack",
            file=sys.stderr,
        )
        return 2
    if mode in ("run", "web") and settings.env.slack_signing_secret is None:
        print("mentiondesk: SLACK_SIGNING_SECRET is not set; refusing to accept unverifiable "
              "requests", file=sys.stderr)
        return 2
    return asyncio.run(_serve(settings, mode))


async def _serve(settings: Settings, mode: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    components = await build(settings)
    if mode == "worker":
        log.info("worker started")
        task = asyncio.create_task(components.dispatcher.run(stop))
        await stop.wait()
        with suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, SHUTDOWN_SECONDS)
        await components.close()
        return 0
    from bot.web import create_app

    app = create_app(components, background=mode == "run")
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.env.host, settings.env.port)
    await site.start()
    log.info("listening on http://%s:%s/", settings.env.host, settings.env.port)
    await stop.wait()
    await runner.cleanup()
    return 0
