"""Signed requests from "Slack" to the bot, exactly as Slack signs them.

Slack signs `v0:{timestamp}:{raw body}` with HMAC-SHA256 under the app's signing secret and
sends `X-Slack-Request-Timestamp` plus `X-Slack-Signature: v0=<hex>`. Bolt refuses requests
older than five minutes, so the timestamp comes from the wall clock, never the emulator's
injectable clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import aiohttp

STALE_AFTER_SECONDS = 60 * 5


class Signing(StrEnum):
    """How to sign a request; anything but VALID is for negative tests."""

    VALID = "valid"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class BotResponse:
    """The bot's HTTP answer to one request from the emulator."""

    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body parsed as JSON, or None when the bot answered with an empty body."""
        return json.loads(self.text) if self.text.strip() else None


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two signature headers Slack would send with `body`."""
    stamp = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(stamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": f"v0={digest}"}


class SlackSender:
    """Posts signed form or JSON bodies to the bot's request URL."""

    def __init__(self, request_url: str | None, signing_secret: str) -> None:
        self.request_url = request_url
        self._secret = signing_secret
        self._session: aiohttp.ClientSession | None = None

    def headers(self, body: bytes, signing: Signing = Signing.VALID) -> dict[str, str]:
        if signing is Signing.UNSIGNED:
            return {}
        now = int(time.time())
        if signing is Signing.STALE_TIMESTAMP:
            return sign(self._secret, body, now - STALE_AFTER_SECONDS - 60)
        headers = sign(self._secret, body, now)
        if signing is Signing.BAD_SIGNATURE:
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
        return headers

    async def post_form(self, fields: Mapping[str, str], *, signing: Signing = Signing.VALID,
                        extra_headers: Mapping[str, str] | None = None) -> BotResponse:
        body = urlencode(fields).encode()
        return await self._post(body, "application/x-www-form-urlencoded", signing,
                                extra_headers)

    async def post_json(self, payload: Mapping[str, Any], *, signing: Signing = Signing.VALID,
                        extra_headers: Mapping[str, str] | None = None) -> BotResponse:
        body = json.dumps(payload).encode()
        return await self._post(body, "application/json", signing, extra_headers)

    async def _post(self, body: bytes, content_type: str, signing: Signing,
                    extra_headers: Mapping[str, str] | None) -> BotResponse:
        if not self.request_url:
            raise RuntimeError("the emulator has no request_url for the bot")
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0"}
        headers.update(self.headers(body, signing))
        headers.update(extra_headers or {})
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._session.post(self.request_url, data=body, headers=headers) as resp:
            text = await resp.text()
            return BotResponse(resp.status, text, dict(resp.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
