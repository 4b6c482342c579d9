"""A local aiohttp server that records every request and can be told to misbehave.

Each network's fake adds the documented routes; tests script failures (429, 5xx, a body that
is not JSON, a request that never gets an answer) for the next matching request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: Any

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class Scripted:
    path: str | None
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class FakeServer:
    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self.requests: list[Recorded] = []
        self._scripted: list[Scripted] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def script(
        self,
        *,
        path: str | None = None,
        status: int = 200,
        body: Any = "",
        headers: Mapping[str, str] | None = None,
        hang: bool = False,
    ) -> None:
        """The next request whose path contains `path` gets this answer instead."""
        text = body if isinstance(body, str) else json.dumps(body)
        self._scripted.append(Scripted(path, status, text, dict(headers or {}), hang))

    def seen(self, path_part: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests
            if path_part in r.path and (method is None or r.method == method)
        ]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        self.requests.append(
            Recorded(request.method, request.path, query, dict(request.headers), body)
        )
        for scripted in self._scripted:
            if scripted.path is None or scripted.path in request.path:
                self._scripted.remove(scripted)
                if scripted.hang:
                    await self._release.wait()
                return web.Response(
                    status=scripted.status,
                    text=scripted.body,
                    headers=scripted.headers,
                    content_type="application/json",
                )
        return await handler(request)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> web.Response:
    return web.json_response(data, status=status, headers=dict(headers or {}))
