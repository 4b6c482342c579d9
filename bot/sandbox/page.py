"""The sandbox page's HTTP side: the static client, its state feed and its actions.

Every action goes through the emulator, which sends the bot the signed request Slack would
send, so what works in the page works in a real workspace. Failures (the bot refusing a
request, a click on something gone, a required field left empty) are kept as incidents and
shown in the page rather than swallowed.

The page controls a local bot, so it only answers requests addressed to the loopback host
(no DNS rebinding) and actions only as JSON from its own origin (no cross-site posts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.connectors.demo import DemoSink
from bot.sandbox.blockkit import elements
from bot.sandbox.client import BotResponse
from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.snapshot import Incident, snapshot
from bot.sandbox.state import utcnow

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
LONG_POLL_SECONDS = 20.0
MAX_INCIDENTS = 50
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


class ActionError(Exception):
    """An action the page asked for that cannot be carried out; the text is for the visitor."""


class SandboxPage:
    def __init__(self, emulator: SlackEmulator, *, leads: Iterable[str]) -> None:
        self.emulator = emulator
        self.leads = list(leads)
        self.sinks: list[DemoSink] = []
        self.incidents: list[Incident] = []

    def attach(self, app: web.Application) -> None:
        """Add the page's routes to the emulator's application (before it starts)."""
        app.middlewares.append(_local_only)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.router.add_get("/sandbox/state", self._state)
        app.router.add_post("/sandbox/act", self._act)

    def add_sink(self, sink: DemoSink) -> None:
        self.sinks.append(sink)
        sink.on_change = self.emulator.changed

    async def report(self, kind: str, text: str) -> None:
        log.error("sandbox: %s: %s", kind, text)
        self.incidents.append(Incident(utcnow(), kind, text))
        del self.incidents[:-MAX_INCIDENTS]
        await self.emulator.changed()

    def state(self, user: str) -> dict[str, Any]:
        return snapshot(self.emulator, user, leads=self.leads, sinks=self.sinks,
                        incidents=self.incidents)

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Cache-Control": "no-store"})

    async def _state(self, request: web.Request) -> web.Response:
        """The state for `user`; with `since`, waits until something newer exists."""
        user = request.query.get("user", "")
        if user not in self.emulator.workspace.users:
            return web.json_response({"error": f"unknown user {user!r}"}, status=400)
        since = request.query.get("since")
        if since is not None and since.lstrip("-").isdigit():
            seen = int(since)
            with suppress(TimeoutError):
                await self.emulator.wait_for(lambda: self.emulator.version != seen
                                             or self.emulator.closing,
                                             timeout=LONG_POLL_SECONDS)
        return web.json_response(self.state(user), headers={"Cache-Control": "no-store"})

    async def _act(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"ok": False, "error": "send JSON"}, status=415)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "not an object"}, status=400)
        kind = str(body.get("kind", ""))
        try:
            response = await self.perform(body)
        except ActionError as exc:
            await self.report(kind or "action", str(exc))
            return web.json_response({"ok": False, "error": str(exc)}, status=422)
        if response is not None and response.status >= 300:
            text = f"the bot answered HTTP {response.status}: {response.text[:300]}"
            await self.report(kind, text)
            return web.json_response({"ok": False, "error": text, "status": response.status})
        return web.json_response({"ok": True,
                                  "status": response.status if response else None})

    async def perform(self, body: Mapping[str, Any]) -> BotResponse | None:
        """Carry out one page action as the emulated Slack client would."""
        emu = self.emulator
        kind = body.get("kind")
        user = _text(body, "user")
        if user not in emu.workspace.users:
            raise ActionError(f"unknown user {user!r}")
        typed = body.get("values")
        if typed is not None and not isinstance(typed, dict):
            raise ActionError("values must be an object")
        if typed and isinstance(body.get("view_id"), str):
            typed = _still_present(emu, body["view_id"], typed)
        try:
            if kind == "command":
                command = _text(body, "command", required=False) or "/mentions"
                return await emu.send_command(user, _text(body, "text", required=False),
                                              command=command, channel=_text(body, "channel"))
            if kind == "click":
                return await emu.click(user, _text(body, "channel"), _text(body, "ts"),
                                       _text(body, "action_id"), body.get("value"),
                                       body.get("block_id"))
            if kind == "view_click":
                return await emu.click_in_view(user, _text(body, "view_id"),
                                               _text(body, "action_id"), body.get("value"),
                                               body.get("block_id"), typed=typed)
            if kind == "view_select":
                return await emu.select_in_view(user, _text(body, "view_id"),
                                                _text(body, "action_id"),
                                                _text(body, "value"), body.get("block_id"),
                                                typed=typed)
            if kind == "view_type":
                stored = emu.views.get(_text(body, "view_id"))
                if stored is None or stored.closed:
                    # The page sends keystrokes after a short pause; the modal may have been
                    # submitted meanwhile. Slack's client would never send those: drop them.
                    return None
                return await emu.type_in_view(user, _text(body, "view_id"),
                                              _text(body, "action_id"),
                                              _text(body, "value", required=False),
                                              body.get("block_id"), typed=typed)
            if kind == "submit":
                return await emu.submit_view(user, _text(body, "view_id"), typed or {})
            if kind == "close_view":
                return await emu.close_view(user, _text(body, "view_id"))
            if kind == "home":
                return await emu.open_home(user)
        except (LookupError, ValueError) as exc:
            raise ActionError(str(exc).strip("'\"")) from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise ActionError(f"the bot could not be reached ({exc.__class__.__name__})"
                              ) from None
        raise ActionError(f"unknown action {kind!r}")


def _still_present(emu: SlackEmulator, view_id: str,
                   typed: Mapping[str, Any]) -> dict[str, Any]:
    """What was typed into inputs the view still has: the bot may have rebuilt the modal
    (another template chosen) since the visitor typed into a field that is now gone."""
    view = emu.views.get(view_id)
    if view is None:
        return dict(typed)
    present = {(str(b.get("block_id")), str(e.get("action_id")))
               for b in view.blocks for e in elements(b)}
    kept: dict[str, Any] = {}
    for block_id, entries in typed.items():
        if isinstance(entries, Mapping):
            inner = {a: v for a, v in entries.items() if (block_id, a) in present}
            if inner:
                kept[block_id] = inner
    return kept


def _text(body: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ActionError(f"missing {key!r}")
        return ""
    if not isinstance(value, str):
        raise ActionError(f"{key!r} must be a string")
    return value


@web.middleware
async def _local_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """The page and its actions answer only to the loopback name they were opened under."""
    if request.path.startswith(("/api/", "/upload/", "/response/")):
        return await handler(request)
    host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith(
        "[") else (request.host or "").split("]")[0] + "]"
    if host not in _LOCAL_HOSTS:
        return web.Response(status=421, text="the sandbox answers on 127.0.0.1 only")
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None:
        origin_host = origin.split("://", 1)[-1]
        if origin_host != request.host:
            return web.Response(status=403, text="cross-site request refused")
    return await handler(request)
