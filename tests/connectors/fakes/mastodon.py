"""A local Mastodon instance: notifications, hashtag timelines, statuses and streaming."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

TOKEN = "masto-token"


def account(acct: str, *, followers: int = 10) -> dict[str, Any]:
    username = acct.split("@")[0]
    return {
        "id": str(1000 + sum(map(ord, acct))),
        "username": username,
        "acct": acct,
        "display_name": username.title(),
        "url": f"https://mastodon.example/@{acct}",
        "followers_count": followers,
        "fields": [],
    }


def status(status_id: int, acct: str, text: str, *, visibility: str = "public",
           in_reply_to_id: str | None = None) -> dict[str, Any]:
    return {
        "id": str(status_id),
        "created_at": "2026-11-22T08:15:01.940Z",
        "in_reply_to_id": in_reply_to_id,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": visibility,
        "language": "en",
        "uri": f"https://mastodon.example/users/{acct}/statuses/{status_id}",
        "url": f"https://mastodon.example/@{acct}/{status_id}",
        "content": f"<p>{text}</p>",
        "reblog": None,
        "account": account(acct),
        "mentions": [],
        "tags": [],
    }


class FakeMastodon(FakeServer):
    def __init__(self, *, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.statuses: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.tags: dict[str, list[dict[str, Any]]] = {}
        self.stream_events: list[tuple[str, Any]] = []
        self.live = False
        self.stream_available = True
        self.streams_opened = 0
        self._streams: list[asyncio.Queue[bytes | None]] = []
        self._stream_change = asyncio.Condition()
        self.created: list[dict[str, Any]] = []
        self._by_key: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(200_000_000_000_000_000)
        self.app.router.add_get("/api/v1/notifications", self._notifications)
        self.app.router.add_get("/api/v1/timelines/tag/{tag}", self._tag)
        self.app.router.add_get("/api/v1/statuses/{id}", self._status)
        self.app.router.add_post("/api/v1/statuses", self._create)
        self.app.router.add_get("/api/v1/streaming/user/notification", self._stream)

    def add_mention(self, notification_id: int, status_id: int, acct: str, text: str,
                    **fields: Any) -> dict[str, Any]:
        item = status(status_id, acct, text, **fields)
        self.statuses[item["id"]] = item
        self.notifications.append({
            "id": str(notification_id),
            "type": "mention",
            "created_at": item["created_at"],
            "account": item["account"],
            "status": item,
        })
        return item

    def add_tagged(self, tag: str, status_id: int, acct: str, text: str) -> dict[str, Any]:
        item = status(status_id, acct, text)
        self.statuses[item["id"]] = item
        self.tags.setdefault(tag, []).append(item)
        return item

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_response({"error": "The access token is invalid"}, 401)
        return None

    def _page(self, request: web.Request, items: list[dict[str, Any]], path: str
              ) -> web.Response:
        limit = int(request.query.get("limit", "40"))
        newest_first = sorted(items, key=lambda i: int(i["id"]), reverse=True)
        min_id = request.query.get("min_id")
        if min_id:
            newer = [i for i in newest_first if int(i["id"]) > int(min_id)]
            page = newer[-limit:]
        else:
            page = newest_first[:limit]
        headers = {}
        if page:
            base = f"{self.url}{path}"
            headers["Link"] = (f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                               f'<{base}?min_id={page[0]["id"]}>; rel="prev"')
        return json_response(page, headers=headers)

    async def _notifications(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        types = request.query.getall("types[]", [])
        items = [n for n in self.notifications if not types or n["type"] in types]
        return self._page(request, items, request.path)

    async def _tag(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        return self._page(request, self.tags.get(request.match_info["tag"], []), request.path)

    async def _status(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        found = self.statuses.get(request.match_info["id"])
        if found is None:
            return json_response({"error": "Record not found"}, 404)
        return json_response(found)

    async def _create(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        key = request.headers.get("Idempotency-Key")
        if key and key in self._by_key:
            return json_response(self._by_key[key])
        body = await request.json()
        text = body.get("status", "")
        if len(text) > 500:
            return json_response(
                {"error": "Validation failed: Text character limit of 500 exceeded"}, 422)
        new = status(next(self._ids), "acme", text, visibility=body.get("visibility", "public"),
                     in_reply_to_id=body.get("in_reply_to_id"))
        self.created.append(new)
        if key:
            self._by_key[key] = new
        return json_response(new)

    # --- streaming: `stream_events` are sent on connect; with `live`, the connection then
    # stays open and gets whatever `push`/`post_mention` send, until `drop_streams`.

    def push(self, event: str, payload: Any) -> None:
        """Send one event to every open stream (a str payload is sent as is, malformed or not)."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        for queue in self._streams:
            queue.put_nowait(f"event: {event}\ndata: {data}\n\n".encode())

    def post_mention(self, notification_id: int, status_id: int, acct: str, text: str
                     ) -> dict[str, Any]:
        """A new mention, as the instance has it: listed for polls and pushed to streams."""
        self.add_mention(notification_id, status_id, acct, text)
        self.push("notification", self.notifications[-1])
        return self.notifications[-1]

    def drop_streams(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)

    async def wait_streams(self, opened: int) -> None:
        """Until `opened` stream connections have been accepted in all."""
        async with self._stream_change:
            await self._stream_change.wait_for(lambda: self.streams_opened >= opened)

    async def close(self) -> None:
        self.drop_streams()
        await super().close()

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if refused := self._refused(request):
            return refused
        if not self.stream_available:
            return json_response({"error": "Streaming is unavailable"}, 503)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b":)\n")
        for event, payload in self.stream_events:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"event: {event}\ndata: {data}\n\n".encode())
            await response.write(b":thump\n")
        if self.live:
            self._streams.append(queue)
            async with self._stream_change:
                self.streams_opened += 1
                self._stream_change.notify_all()
            try:
                while (chunk := await queue.get()) is not None:
                    await response.write(chunk)
                    await response.write(b":thump\n")
            finally:
                self._streams.remove(queue)
        await response.write_eof()
        return response
