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
from bot.socket_mode import SocketModeGateway
from bot.wiring import Components, build

log = logging.getLogger(__name__)
SHUTDOWN_SECONDS = 20


def serve(settings: Settings, *, mode: str) -> int:
    if settings.sandbox and mode == "run":
        return asyncio.run(_sandbox(settings))
    if settings.sandbox and mode == "web":
        print(
            "mentiondesk: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set; set them "
            "(see README: Creating the Slack app) to connect to Slack, or try "
            "`mentiondesk run` for the local sandbox",
            file=sys.stderr,
        )
        return 2
    socket_mode = settings.env.slack_app_token is not None
    if mode in ("run", "web") and settings.env.slack_signing_secret is None and not socket_mode:
        print("mentiondesk: SLACK_SIGNING_SECRET is not set; refusing to accept unverifiable "
              "requests (or set SLACK_APP_TOKEN for Socket Mode)", file=sys.stderr)
        return 2
    return asyncio.run(_serve(settings, mode))


async def _socket_mode(components: Components) -> SocketModeGateway | None:
    """With SLACK_APP_TOKEN, Slack's requests come over a WebSocket the bot opens."""
    token = components.settings.env.slack_app_token
    if token is None:
        return None
    gateway = SocketModeGateway(components, token.get_secret_value())
    await gateway.start()
    return gateway


async def _sandbox(settings: Settings) -> int:
    """No bot token: the local sandbox workspace (bot/sandbox/serve.py)."""
    from bot.sandbox.serve import run_sandbox

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return await run_sandbox(settings, stop)


async def _serve(settings: Settings, mode: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    components = await build(settings)
    if mode == "worker":
        log.info("worker started")
        from bot.polling import polling_for

        tasks = [asyncio.create_task(components.dispatcher.run(stop)),
                 asyncio.create_task(polling_for(components).run(stop))]
        if components.timers is not None:
            tasks.append(asyncio.create_task(components.timers.run(stop)))
        await stop.wait()
        # One deadline for all: in-flight effects finish, unstarted leases are handed back.
        _done, late = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=2)
        await components.close()
        log.info("worker stopped")
        return 0
    from bot.web import create_app

    app = create_app(components, background=mode == "run")
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.env.host, settings.env.port)
    await site.start()
    log.info("listening on http://%s:%s/", settings.env.host, settings.env.port)
    gateway = await _socket_mode(components)
    await stop.wait()
    if gateway is not None:
        await gateway.close()
    await runner.cleanup()
    return 0
