"""A local web site serving a feed with validators, answering 304 when nothing changed."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer

DATA = Path(__file__).resolve().parents[2] / "data" / "rss"
RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


class FakeFeed(FakeServer):
    """`GET /feed.xml`; honours `If-None-Match` and `If-Modified-Since` like a web server."""

    def __init__(self) -> None:
        super().__init__()
        self.body = load("news.rss.xml")
        self.content_type = RSS_TYPE
        self.etag: str | None = '"v1-3f9a"'
        self.last_modified: str | None = "Sun, 22 Nov 2026 09:40:00 GMT"
        self.app.router.add_get("/feed.xml", self._feed)

    def publish(self, body: bytes, etag: str | None, last_modified: str | None) -> None:
        self.body, self.etag, self.last_modified = body, etag, last_modified

    async def _feed(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        if self.etag:
            headers["ETag"] = self.etag
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
        if_none_match = request.headers.get("If-None-Match")
        if_modified = request.headers.get("If-Modified-Since")
        unchanged = (if_none_match == self.etag) if if_none_match and self.etag else (
            bool(if_modified) and if_modified == self.last_modified)
        if unchanged:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = f"{self.content_type}; charset=utf-8"
        return web.Response(body=self.body, headers=headers)
