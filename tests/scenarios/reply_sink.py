"""A local reply endpoint for a generic source, as a custom channel would run it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.connectors.signing import verify
from tests.loopback import serving


@dataclass
class ReplySink:
    secret: bytes
    received: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    answer_status: int = 200
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(self.secret, raw, request.headers.get("X-Mentiondesk-Signature")):
            return web.json_response({"error": "bad signature"}, status=401)
        if self.answer_status >= 400:
            return web.json_response({"error": "refused by the forum"}, status=self.answer_status)
        body = json.loads(raw)
        self.received.append(body)
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        n = len(self.received)
        return web.json_response({"id": f"r{n}", "url": f"https://forum.example/r/{n}"})


@asynccontextmanager
async def reply_sink(secret: bytes) -> AsyncIterator[ReplySink]:
    sink = ReplySink(secret)
    app = web.Application()
    app.router.add_post("/replies", sink.handle)
    async with serving(app) as base:
        sink.url = f"{base}/replies"
        yield sink
