"""A local Reddit: the OAuth token endpoint, inbox mentions, search and `POST /api/comment`.

Listings are served newest first and paged with `limit` / `after` (a fullname), as Reddit does.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

DATA = Path(__file__).resolve().parents[2] / "data" / "reddit"
CLIENT_ID = "p-jcoLKBynTLew"
CLIENT_SECRET = "gko_LXELoV07ZBNUXrvWZfzE3aI"
USERNAME = "acme_support"
PASSWORD = "correct horse battery staple"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def children(name: str) -> list[dict[str, Any]]:
    return list(load(name)["data"]["children"])


def form(body: Any) -> dict[str, str]:
    """The recorded body of a form POST as a dict."""
    return dict(parse_qsl(body if isinstance(body, str) else "", keep_blank_values=True))


class FakeReddit(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.inbox: list[dict[str, Any]] = children("inbox_mentions.json")
        self.search_results: list[dict[str, Any]] = children("search_new.json")
        self.expires_in = 86400
        self.token = "tok-1"
        self.comment_answer: Any = load("comment_ok.json")
        self.own_comments: list[dict[str, Any]] = []
        self.comment_count = 0
        self.lose_next_answer = False  # the comment is made, the answer never arrives
        self._answer_lost = asyncio.Event()
        self.app.router.add_post("/api/v1/access_token", self._token)
        self.app.router.add_get("/message/mentions", self._mentions)
        self.app.router.add_get("/search", self._search)
        self.app.router.add_get("/r/{subs}/search", self._search)
        self.app.router.add_post("/api/comment", self._comment)
        self.app.router.add_get("/user/{name}/comments", self._user_comments)

    def add_newest(self, *items: dict[str, Any]) -> None:
        self.inbox[0:0] = list(items)

    async def _token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return json_response({"message": "Unauthorized", "error": 401}, status=401)
        fields = form(self.requests[-1].body)
        if fields.get("username") != USERNAME or fields.get("password") != PASSWORD:
            return json_response({"error": "invalid_grant"})
        return json_response({"access_token": self.token, "token_type": "bearer",
                              "expires_in": self.expires_in, "scope": "*"})

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"bearer {self.token}"

    async def _mentions(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return json_response({"message": "Unauthorized", "error": 401}, status=401)
        return json_response(_page(self.inbox, request))

    async def _search(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return json_response({"message": "Unauthorized", "error": 401}, status=401)
        return json_response(_page(self.search_results, request))

    async def _comment(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return json_response({"message": "Unauthorized", "error": 401}, status=401)
        fields = form(self.requests[-1].body)
        things = (self.comment_answer.get("json", {}).get("data") or {}).get("things") or []
        if things:
            self.comment_count += 1
            thing = json.loads(json.dumps(things[0]))
            thing["data"].update(parent_id=fields.get("thing_id"), body=fields.get("text"))
            self.own_comments.insert(0, thing)
        if self.lose_next_answer:
            self.lose_next_answer = False
            await self._answer_lost.wait()
        return json_response(self.comment_answer)

    async def close(self) -> None:
        self._answer_lost.set()
        await super().close()

    async def _user_comments(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return json_response({"message": "Unauthorized", "error": 401}, status=401)
        return json_response(_page(self.own_comments, request))


def _page(items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    limit = min(int(request.query.get("limit", "25")), 100)
    start = 0
    after = request.query.get("after")
    if after:
        names = [item["data"].get("name") for item in items]
        start = names.index(after) + 1 if after in names else len(items)
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return {
        "kind": "Listing",
        "data": {
            "after": chunk[-1]["data"].get("name") if chunk and more else None,
            "dist": len(chunk),
            "modhash": None,
            "geo_filter": "",
            "before": None,
            "children": chunk,
        },
    }
