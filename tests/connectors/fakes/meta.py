"""A local Graph API for replies, plus signed webhook notifications as Meta sends them."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

DATA = Path(__file__).resolve().parents[2] / "data" / "meta"
VERSION = "/v21.0"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAFakePageToken"
APP_SECRET = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def load_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(load_bytes(name))


def sign(body: bytes, secret: bytes = APP_SECRET) -> str:
    """`X-Hub-Signature-256` as Meta computes it over the raw payload."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class FakeGraph(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.next_id = 1187654321100001
        self.mentioned_comment: Any = load("mentioned_comment.json")
        self.shortcode = "DCzX3vLsQ9a"
        for edge in ("comments", "replies", "mentions"):
            self.app.router.add_post(f"{VERSION}/{{node}}/{edge}", self._create)
        self.app.router.add_get(f"{VERSION}/{{node}}", self._read)

    @property
    def base_url(self) -> str:
        return f"{self.url}{VERSION}"

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {PAGE_TOKEN}":
            return json_response(load("graph_error_token.json"), status=400)
        return None

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.next_id += 1
        node = request.match_info["node"]
        created = f"{node.split('_')[0]}_{self.next_id}" if "_" in node else str(self.next_id)
        return json_response({"id": created})

    async def _read(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if request.query.get("fields") == "permalink":  # an IG Media's public link
            node = request.match_info["node"]
            return json_response({"permalink": f"https://www.instagram.com/p/{self.shortcode}/",
                                  "id": node})
        return json_response(self.mentioned_comment)
