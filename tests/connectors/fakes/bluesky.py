"""A local PDS speaking the XRPC methods the Bluesky connector uses, shaped like the lexicons."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

IDENTIFIER = "acme.example"
PASSWORD = "app-pass-word"
BRAND_DID = "did:plc:acmebrand"
_START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def stamp(n: int) -> str:
    return (_START + timedelta(seconds=n)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def author(handle: str) -> dict[str, Any]:
    return {"did": f"did:plc:{handle.split('.')[0]}", "handle": handle,
            "displayName": handle.split(".")[0].title(), "labels": []}


class FakeBluesky(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.notifications: list[dict[str, Any]] = []
        self.posts: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.handles: dict[str, str] = {IDENTIFIER: BRAND_DID}
        self.expired: set[str] = set()
        self._tokens = itertools.count(1)
        self.access = ""
        self.refresh = ""
        routes = {
            "com.atproto.server.createSession": ("POST", self._create_session),
            "com.atproto.server.refreshSession": ("POST", self._refresh_session),
            "app.bsky.notification.listNotifications": ("GET", self._list_notifications),
            "app.bsky.feed.searchPosts": ("GET", self._search),
            "app.bsky.feed.getPosts": ("GET", self._get_posts),
            "com.atproto.identity.resolveHandle": ("GET", self._resolve),
            "com.atproto.repo.createRecord": ("POST", self._create_record),
            "com.atproto.repo.getRecord": ("GET", self._get_record),
        }
        for nsid, (method, handler) in routes.items():
            self.app.router.add_route(method, f"/xrpc/{nsid}", handler)

    # --- test helpers ------------------------------------------------------------------

    def add_post(self, n: int, handle: str, text: str, **record: Any) -> dict[str, Any]:
        who = author(handle)
        uri = f"at://{who['did']}/app.bsky.feed.post/3lbq{n:09d}"
        view = {
            "uri": uri,
            "cid": f"bafyrei{n:020d}",
            "author": who,
            "record": {"$type": "app.bsky.feed.post", "createdAt": stamp(n), "text": text,
                       "langs": ["en"], **record},
            "indexedAt": stamp(n),
            "replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0,
            "labels": [],
        }
        self.posts[uri] = view
        return view

    def add_notification(self, n: int, handle: str, text: str, reason: str = "mention",
                         **record: Any) -> dict[str, Any]:
        view = self.add_post(n, handle, text, **record)
        self.notifications.append({
            "uri": view["uri"], "cid": view["cid"], "author": view["author"],
            "reason": reason, "record": view["record"], "isRead": False,
            "indexedAt": view["indexedAt"], "labels": [],
        })
        return view

    def expire_access(self) -> None:
        self.expired.add(self.access)

    # --- plumbing ----------------------------------------------------------------------

    def _new_tokens(self) -> dict[str, Any]:
        n = next(self._tokens)
        self.access, self.refresh = f"access-{n}", f"refresh-{n}"
        return {"accessJwt": self.access, "refreshJwt": self.refresh, "handle": IDENTIFIER,
                "did": BRAND_DID, "active": True}

    def _refused(self, request: web.Request, token: str | None = None) -> web.Response | None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if given in self.expired:
            return json_response({"error": "ExpiredToken", "message": "Token has expired"}, 400)
        if not given or given != (token or self.access):
            return json_response({"error": "AuthenticationRequired",
                                  "message": "Invalid identifier or password"}, 401)
        return None

    @staticmethod
    def _paged(request: web.Request, items: list[dict[str, Any]], key: str
               ) -> dict[str, Any]:
        newest_first = sorted(items, key=lambda i: i["indexedAt"], reverse=True)
        cursor = request.query.get("cursor")
        if cursor:
            newest_first = [i for i in newest_first if i["indexedAt"] < cursor]
        limit = int(request.query.get("limit", "50"))
        page = newest_first[:limit]
        body: dict[str, Any] = {key: page}
        if len(newest_first) > limit:
            body["cursor"] = page[-1]["indexedAt"]
        return body

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"identifier": IDENTIFIER, "password": PASSWORD}:
            return json_response({"error": "AuthenticationRequired",
                                  "message": "Invalid identifier or password"}, 401)
        return json_response(self._new_tokens())

    async def _refresh_session(self, request: web.Request) -> web.Response:
        if refused := self._refused(request, self.refresh):
            return refused
        return json_response(self._new_tokens())

    async def _list_notifications(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        reasons = request.query.getall("reasons", [])
        items = [n for n in self.notifications if not reasons or n["reason"] in reasons]
        return json_response({**self._paged(request, items, "notifications"),
                              "priority": False})

    async def _search(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        q = request.query.get("q", "").lower()
        hits = [p for p in self.posts.values() if q in p["record"]["text"].lower()]
        return json_response({**self._paged(request, hits, "posts"), "hitsTotal": len(hits)})

    async def _get_posts(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        uris = request.query.getall("uris", [])
        return json_response({"posts": [self.posts[u] for u in uris if u in self.posts]})

    async def _resolve(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        did = self.handles.get(request.query.get("handle", ""))
        if did is None:
            return json_response({"error": "InvalidRequest",
                                  "message": "Unable to resolve handle"}, 400)
        return json_response({"did": did})

    async def _create_record(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        body = await request.json()
        record = body["record"]
        if len(record.get("text", "")) > 300:
            return json_response({"error": "InvalidRequest",
                                  "message": "Invalid app.bsky.feed.post record: Record/text "
                                             "must not be longer than 300 graphemes"}, 400)
        uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
        if uri in self.records:
            # What the reference PDS answers today for a record key already used.
            return json_response({"error": "InternalServerError",
                                  "message": "Internal Server Error"}, 500)
        cid = f"bafyreireply{len(self.records):08d}"
        self.records[uri] = {"uri": uri, "cid": cid, "value": record}
        return json_response({"uri": uri, "cid": cid,
                              "commit": {"cid": "bafyreicommit", "rev": "3lbqrev000000"},
                              "validationStatus": "valid"})

    async def _get_record(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        q = request.query
        uri = f"at://{q.get('repo')}/{q.get('collection')}/{q.get('rkey')}"
        if uri not in self.records:
            return json_response({"error": "RecordNotFound",
                                  "message": f"Could not locate record: {uri}"}, 400)
        return json_response(self.records[uri])
