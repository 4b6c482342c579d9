"""Socket Mode, Slack's side: `apps.connections.open`, the WebSocket, envelopes and acks.

With Socket Mode the app dials out to Slack and requests arrive as JSON envelopes over a
WebSocket instead of signed HTTP posts; the app acknowledges each `envelope_id`, optionally
with a response payload (a view_submission's `response_action`, a command's message). The
connection itself is authenticated by the app-level token (`xapp-…`), so nothing is signed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox.client import BotResponse, Signing

ACK_TIMEOUT_SECONDS = 3.0  # Slack treats an unacknowledged envelope as failed after 3 s.


class SocketModeHub:
    """Hands out WebSocket URLs and delivers envelopes to whichever app connection is open."""

    def __init__(self, app_token: str, app_id: str) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self.envelopes: list[dict[str, Any]] = []

    # Web API and WebSocket endpoints

    def open_connection(self, token: str | None, base_url: str) -> dict[str, Any]:
        """`apps.connections.open`: only the app-level token may open a socket."""
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        ws_base = base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_base}socket-mode/{ticket}"}

    async def handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self._sockets),
                            "connection_info": {"app_id": self.app_id},
                            "debug_info": {"host": "sandbox", "approximate_connection_time": 3600}})
        self._connected.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._acknowledge(message.data)
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._connected.clear()
        return ws

    def _acknowledge(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except json.JSONDecodeError:
            return
        if not isinstance(ack, dict):
            return
        future = self._pending.get(str(ack.get("envelope_id")))
        if future is not None and not future.done():
            future.set_result(ack)

    # delivering

    @property
    def connected(self) -> bool:
        return bool(self._sockets)

    async def wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def deliver(self, kind: str, payload: Mapping[str, Any], *,
                      retry_attempt: int = 0, retry_reason: str = "") -> BotResponse:
        """Send one envelope and wait for its ack; no ack within 3 s answers like a timeout."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        envelope_id = secrets.token_hex(16)
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind,
                                    "payload": dict(payload),
                                    "accepts_response_payload": kind != "events_api"}
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        self.envelopes.append(envelope)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        try:
            await self._sockets[-1].send_json(envelope)
            async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
                ack = await future
        except TimeoutError:
            return BotResponse(408, "", {})
        finally:
            self._pending.pop(envelope_id, None)
        body = ack.get("payload")
        return BotResponse(200, json.dumps(body) if body else "", {})

    async def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Ask every connected app to reconnect, as Slack does before recycling a host."""
        for ws in list(self._sockets):
            await ws.send_json({"type": "disconnect", "reason": reason,
                                "debug_info": {"host": "sandbox"}})

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()


class SocketSender:
    """Drop-in for the HTTP sender: the same requests, delivered as Socket Mode envelopes.

    `signing` is accepted for interface parity and ignored: Socket Mode requests are not
    signed, the app-token-authenticated connection vouches for them.
    """

    def __init__(self, hub: SocketModeHub) -> None:
        self.hub = hub
        self.request_url: str | None = None

    async def post_form(self, fields: Mapping[str, str], *, signing: Signing = Signing.VALID,
                        extra_headers: Mapping[str, str] | None = None) -> BotResponse:
        del signing, extra_headers
        if set(fields) == {"payload"}:
            return await self.hub.deliver("interactive", json.loads(fields["payload"]))
        return await self.hub.deliver("slash_commands", fields)

    async def post_json(self, payload: Mapping[str, Any], *, signing: Signing = Signing.VALID,
                        extra_headers: Mapping[str, str] | None = None) -> BotResponse:
        del signing
        headers = extra_headers or {}
        if payload.get("type") != "event_callback":
            raise ValueError(f"Socket Mode does not carry {payload.get('type')!r} requests")
        return await self.hub.deliver(
            "events_api", payload,
            retry_attempt=int(headers.get("X-Slack-Retry-Num", "0")),
            retry_reason=headers.get("X-Slack-Retry-Reason", ""),
        )

    async def close(self) -> None:
        await self.hub.close()
