"""Reference servers, measured beside the product in the same run.

`aiohttp`: a bare aiohttp handler that answers 200 (the ceiling of the HTTP stack and of the
load generator together). `bolt`: the same libraries as the product (aiohttp, slack_sdk's
signature check inside Bolt, a Bolt AsyncApp whose listeners only acknowledge) with no
database, i.e. an acknowledgement without persistence.

Run as `python -m bench.reference KIND PORT SIGNING_SECRET SLACK_API_URL BOT_TOKEN`.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

Ack = Callable[..., Awaitable[Any]]


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def bare_app() -> web.Application:
    async def events(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    return app


def bolt_app(secret: str, api_url: str, token: str) -> web.Application:
    bolt = AsyncApp(client=AsyncWebClient(token=token, base_url=api_url), signing_secret=secret,
                    raise_error_for_unhandled_request=False)

    @bolt.event("app_home_opened")
    async def _home(event: dict[str, Any]) -> None:
        return None

    @bolt.action("mention.claim")
    async def _claim(ack: Ack) -> None:
        await ack()

    @bolt.action("mention.close")
    async def _close(ack: Ack) -> None:
        await ack()

    @bolt.command("/mentions")
    async def _command(ack: Ack) -> None:
        await ack(text="ok")

    async def events(request: web.Request) -> web.Response:
        body = await request.text()
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string,
                                        headers=dict(request.headers))
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str]) -> int:
    kind, port, secret, api_url, token = argv
    app = bare_app() if kind == "aiohttp" else bolt_app(secret, api_url, token)
    web.run_app(app, host="127.0.0.1", port=int(port), access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
