"""A local Slack: the Web API the bot calls, and the signed requests Slack sends the bot.

The test suite uses it as the fake Slack and the sandbox page uses it so people can try the
bot without a workspace. It is deliberately strict: every `blocks` array and `view` is
checked against Slack's documented limits, and a violation is answered with Slack's own
error, recorded in `violations` and logged at ERROR, so a payload real Slack would refuse
never passes silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.blockkit import find_element
from bot.sandbox.client import BotResponse, Signing, SlackSender, sign
from bot.sandbox.faults import Faults
from bot.sandbox.limits import Problem
from bot.sandbox.payloads import (
    action_entry,
    command_form,
    element_state,
    event_envelope,
    interaction_base,
    missing_required,
    view_values,
)
from bot.sandbox.socket_mode import SocketModeHub, SocketSender
from bot.sandbox.state import (
    DEFAULT_CHANNELS,
    DEFAULT_USERS,
    Channel,
    Ephemeral,
    ResponseUrlPost,
    StoredMessage,
    StoredView,
    UploadedFile,
    User,
    utcnow,
)
from bot.sandbox.webapi import ApiError, Args, WebApi
from bot.sandbox.workspace import ResponseTarget, Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

BOT_USER = User("U0BOT", "mentiondesk", "Mentiondesk", "mentiondesk", is_bot=True)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API request as the emulator received it (arguments JSON-decoded)."""

    method: str
    args: dict[str, Any]
    at: datetime
    status: int = 200
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


class SlackEmulator:
    """Plays Slack in both directions for one workspace and one app."""

    def __init__(
        self,
        *,
        signing_secret: str = "sandbox-signing-secret",
        bot_token: str = "xoxb-sandbox-token",
        request_url: str | None = None,
        team_id: str = "T0MENTDSK",
        team_domain: str = "mentiondesk",
        app_id: str = "A0MENTDSK",
        bot_id: str = "B0MENTDSK",
        verification_token: str = "sandbox-verification-token",
        app_token: str = "xapp-sandbox-app-token",
        clock: Callable[[], float] = time.time,
        users: Iterable[User] = DEFAULT_USERS,
        channels: Iterable[Channel] = DEFAULT_CHANNELS,
        usergroups: dict[str, list[str]] | None = None,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.verification_token = verification_token
        self.clock = clock
        self.workspace = Workspace(
            clock=clock, team_id=team_id, team_domain=team_domain, app_id=app_id,
            bot_user=BOT_USER, bot_id=bot_id, users=users, channels=channels,
            usergroups=usergroups,
        )
        self.api = WebApi(self.workspace, self._report, lambda: self.base_url)
        self.sender: SlackSender | SocketSender = SlackSender(request_url, signing_secret)
        self.socket_mode = SocketModeHub(app_token, app_id)
        self.calls: list[ApiCall] = []
        self.violations: list[str] = []
        self.view_errors: dict[str, dict[str, str]] = {}
        self.faults = Faults(clock)
        self._changed = asyncio.Condition()
        self.closing = False
        self.version = 0
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # lifecycle

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/socket-mode/{ticket}", self.socket_mode.handle_socket)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on loopback; returns the Web API base URL for `AsyncWebClient(base_url=)`.
        It holds no real secrets but answers anyone, so it never listens beyond loopback."""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the Slack emulator only binds to loopback, not {host!r}")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}/"
        return self.api_url

    async def stop(self) -> None:
        self.closing = True
        await self._notify()  # long-polling readers (the sandbox page) return at once
        self.release_delays()
        await self.sender.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def mounted_at(self, base_url: str) -> None:
        """Tell the emulator its public URL when `app` is served by someone else."""
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the emulator is not started (call start() or mounted_at())")
        return self._base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    @property
    def request_url(self) -> str | None:
        return self.sender.request_url

    @request_url.setter
    def request_url(self, url: str | None) -> None:
        self.sender.request_url = url

    # seeding

    def add_user(self, user_id: str, name: str, *, real_name: str = "",
                 is_bot: bool = False) -> User:
        return self.workspace.add_user(User(user_id, name, real_name, name, is_bot=is_bot))

    def add_channel(self, channel_id: str, name: str) -> Channel:
        return self.workspace.add_channel(Channel(channel_id, name))

    def add_usergroup(self, group_id: str, members: Sequence[str]) -> None:
        self.workspace.usergroups[group_id] = list(members)

    # fault injection

    def fail(self, method: str, status: int = 429, *, retry_after: int | None = 1,
             times: int = 1, error: str | None = None) -> None:
        """The next `times` calls to `method` fail without being applied."""
        self.faults.fail(method, status, retry_after, times, error)

    def outage(self, method: str, seconds: float, *, statuses: tuple[int, ...] = (429, 500),
               retry_after: int = 1, ok_between: int = 0) -> None:
        """For the next `seconds`, calls to `method` fail in turn with `statuses` (none
        applied), `ok_between` normal answers between two failures."""
        self.faults.outage(method, seconds, statuses, retry_after, ok_between)

    def outage_over(self, method: str) -> bool:
        return self.faults.outage_over(method)

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls are applied, then answered `seconds` late (a timeout that
        nonetheless happened). `release_delays()` answers them at once."""
        self.faults.delay(method, seconds, times)

    def rate_limit(self, method: str, per_channel_per_second: float) -> None:
        """Answer 429 when the bot calls `method` faster than this for one channel."""
        self.faults.rate_limit(method, per_channel_per_second)

    def clear_faults(self) -> None:
        self.faults.clear()

    def release_delays(self) -> None:
        self.faults.release()

    # Web API side

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if not request.body_exists:
            return raw
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise ApiError("invalid_json") from exc
            if isinstance(body, dict):
                raw.update(body)
        else:
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        return raw

    def use_socket_mode(self) -> None:
        """Deliver requests over the app's Socket Mode connection instead of HTTP posts."""
        self.sender = SocketSender(self.socket_mode)

    def _auth_error(self, request: web.Request, raw: dict[str, Any]) -> str | None:
        token = _token(request, raw)
        if not token:
            return "not_authed"
        return None if token == self.bot_token else "invalid_auth"

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = utcnow()
        headers: dict[str, str] = {}
        status = 200
        args: dict[str, Any] = {}
        try:
            raw = await self._read_args(request)
            args = {k: v for k, v in raw.items() if k != "token"}
            parsed = Args(args)
            args = parsed.raw
            fault = self.faults.take_fault(method)
            if fault is not None:
                status = fault.status
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                raise ApiError(fault.error)
            if method == "apps.connections.open":
                raise ApiReply(self.socket_mode.open_connection(_token(request, raw),
                                                                self.base_url))
            handler = self.api.handlers.get(method)
            if handler is None:
                self._report(method, [Problem("/", f"unknown Web API method {method!r}")])
                raise ApiError("unknown_method")
            auth_error = self._auth_error(request, raw)
            if auth_error is not None:
                raise ApiError(auth_error)
            channel = str(parsed.get("channel") or parsed.get("channel_id") or "")
            if self.faults.over_rate(method, channel):
                status, headers["Retry-After"] = 429, "1"
                raise ApiError("ratelimited")
            body = handler(parsed)
        except ApiError as exc:
            body = exc.body()
        except ApiReply as reply:
            body = reply.body
        self.calls.append(ApiCall(method, args, at, status, body.get("error")))
        await self._notify()
        delay = self.faults.take_delay(method)
        if delay is not None:
            await self.faults.hold(delay.seconds)
        return web.json_response(body, status=status, headers=headers)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file = self.workspace.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = part.file.read() if part is not None else b""
        else:
            content = await request.read()
        file.content = content
        await self._notify()
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        target = self.workspace.response_targets.get(request.match_info["key"])
        if target is None:
            return web.Response(status=404, text="no_such_response_url",
                                content_type="text/plain")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        self.workspace.responses.append(
            ResponseUrlPost(request.match_info["key"], body, utcnow()))
        try:
            self._apply_message_response(target, body, source="response_url")
        except ApiError as exc:
            await self._notify()
            return web.Response(status=400, text=exc.error, content_type="text/plain")
        await self._notify()
        return web.json_response({"ok": True})

    def _apply_message_response(self, target: ResponseTarget, body: Mapping[str, Any],
                                *, source: str) -> None:
        """What Slack does with a response_url post or a slash command's ack body."""
        ws = self.workspace
        original = ws.find_message(target.channel, target.message_ts or "")
        if body.get("delete_original") and original is not None:
            original.deleted = True
            return
        args = Args({k: body.get(k) for k in ("text", "blocks", "attachments")
                     if body.get(k) is not None})
        if not args.raw:
            return
        self.api.check_message(source, args, require_content=False)
        if body.get("replace_original") and original is not None:
            original.versions.append(self.api.render(original))
            original.text = str(args.get("text") or "")
            original.blocks = args.get("blocks")
            original.edit_count += 1
            original.edited_ts = ws.ids.ts()
        elif body.get("response_type") == "in_channel":
            ws.post(target.channel, user=ws.bot_user.id, bot_id=ws.bot_id,
                    text=str(args.get("text") or ""), blocks=args.get("blocks"),
                    thread_ts=body.get("thread_ts"))
        else:
            ws.add_ephemeral(target.channel, target.user, text=str(args.get("text") or ""),
                             blocks=args.get("blocks"), source=source)

    # recording and waiting

    def _report(self, method: str, problems: Sequence[Problem]) -> None:
        for problem in problems:
            line = f"{method}: {problem}"
            self.violations.append(line)
            log.error("Slack would refuse this payload: %s", line)

    async def _notify(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def changed(self) -> None:
        """Something the page shows changed outside the emulator (a demo reply, a problem)."""
        await self._notify()

    async def wait_for(self, predicate: Callable[[], T],
                       timeout: float = 5.0) -> T:  # noqa: ASYNC109 - the test-facing API
        """Wait until `predicate()` is truthy, re-checking after every request the emulator
        handles; returns its value. Use instead of sleeping in tests."""
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    return await self._changed.wait_for(predicate)
            except TimeoutError:
                recent = ", ".join(c.method for c in self.calls[-10:]) or "none"
                raise TimeoutError(
                    f"condition not met within {timeout}s; recent calls: {recent}") from None

    async def wait_for_call(self, method: str, count: int = 1,
                            timeout: float = 5.0) -> ApiCall:  # noqa: ASYNC109
        """The `count`-th call to `method`, once it has arrived."""
        await self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)[count - 1]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str, *, include_replies: bool = False) -> list[StoredMessage]:
        """Current messages in posting order (oldest first), deleted ones left out."""
        return [m for m in self.workspace.messages.get(channel, [])
                if not m.deleted and (include_replies or not m.is_reply)]

    def replies(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        return [m for m in self.workspace.messages.get(channel, [])
                if not m.deleted and m.is_reply and m.thread_ts == thread_ts]

    def message(self, channel: str, ts: str) -> StoredMessage | None:
        return self.workspace.find_message(channel, ts)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        return [e for e in self.workspace.ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)]

    @property
    def views(self) -> dict[str, StoredView]:
        return self.workspace.views

    def open_views(self, user: str) -> list[StoredView]:
        """The user's modal stack, bottom first."""
        return self.workspace.stack_of_user(user)

    def home(self, user: str) -> StoredView | None:
        return self.workspace.home_view(user)

    @property
    def files(self) -> dict[str, UploadedFile]:
        return self.workspace.files

    @property
    def responses(self) -> list[ResponseUrlPost]:
        return self.workspace.responses

    def issue_trigger(self, user: str) -> str:
        """A fresh trigger_id for `user`, as if they had just clicked something."""
        return self.workspace.issue_trigger(self._user(user).id).id

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        return sign(self.signing_secret, body, timestamp)

    # Slack -> bot side

    def _user(self, user_id: str) -> User:
        user = self.workspace.users.get(user_id)
        if user is None:
            raise LookupError(f"unknown user {user_id!r}; add it with add_user()")
        return user

    def _response_url(self, target: ResponseTarget) -> str:
        return f"{self.base_url}response/{self.workspace.issue_response_target(target)}"

    async def send_command(self, user: str, text: str = "", command: str = "/mentions",
                           channel: str = "C0MENTIONS", *,
                           signing: Signing = Signing.VALID) -> BotResponse:
        """A slash command; a JSON ack body is shown to the user as Slack would."""
        person = self._user(user)
        form = command_form(
            self.workspace, user=person, command=command, text=text, channel=channel,
            token=self.verification_token,
            response_url=self._response_url(ResponseTarget(channel, user)),
            trigger_id=self.workspace.issue_trigger(user).id,
        )
        response = await self.sender.post_form(form, signing=signing)
        body = _json_or_none(response)
        if body is None and response.text.strip():
            body = {"text": response.text}
        if response.status == 200 and isinstance(body, dict):
            with contextlib.suppress(ApiError):
                self._apply_message_response(ResponseTarget(channel, user), body,
                                             source="command_ack")
        await self._notify()
        return response

    async def click(self, user: str, channel: str, message_ts: str, action_id: str,
                    value: str | None = None, block_id: str | None = None, *,
                    signing: Signing = Signing.VALID) -> BotResponse:
        """A button (or overflow option) pressed on a stored or ephemeral message."""
        ws = self.workspace
        person = self._user(user)
        message = ws.find_message(channel, message_ts)
        if message is not None:
            blocks = message.blocks or []
        else:
            ephemeral = next((e for e in ws.ephemerals
                              if e.channel == channel and e.ts == message_ts), None)
            if ephemeral is None:
                raise LookupError(f"no message {message_ts} in {channel}")
            blocks = ephemeral.blocks or []
        block, element = find_element(blocks, action_id, block_id)
        chosen = value if value is not None else element.get("value")
        payload = interaction_base(ws, kind="block_actions", user=person,
                                   token=self.verification_token,
                                   trigger_id=ws.issue_trigger(user).id)
        payload["container"] = {"type": "message", "message_ts": message_ts,
                                "channel_id": channel, "is_ephemeral": message is None}
        payload["channel"] = {"id": channel, "name": ws.channel_name(channel)}
        if message is not None:
            payload["message"] = self.api.render(message)
        payload["state"] = {"values": {}}
        payload["response_url"] = self._response_url(
            ResponseTarget(channel, user, message_ts if message is not None else None))
        payload["actions"] = [action_entry(element, str(block.get("block_id")),
                                           ws.ids.ts(), chosen)]
        return await self._send_interaction(payload, signing)

    async def click_in_view(self, user: str, view_id: str, action_id: str,
                            value: str | None = None, block_id: str | None = None, *,
                            typed: Mapping[str, Any] | None = None,
                            signing: Signing = Signing.VALID) -> BotResponse:
        """A button pressed inside a modal or the App Home. `typed` is what the user has
        entered so far (as for `submit_view`); Slack reports it in the view's state."""
        view = self._view(view_id)
        if typed:
            view.values = view_values(view, typed)
        block, element = find_element(view.blocks, action_id, block_id)
        chosen = value if value is not None else element.get("value")
        return await self._view_action(user, view, block, element, chosen, signing)

    async def select_in_view(self, user: str, view_id: str, action_id: str, value: str,
                             block_id: str | None = None, *,
                             typed: Mapping[str, Any] | None = None,
                             signing: Signing = Signing.VALID) -> BotResponse:
        """An option chosen in a select inside a modal or the App Home; the choice is kept
        in the view's state, as Slack keeps it, for the later submission."""
        view = self._view(view_id)
        if typed:
            view.values = view_values(view, typed)
        block, element = find_element(view.blocks, action_id, block_id)
        view.values.setdefault(str(block.get("block_id")), {})[action_id] = (
            element_state(element, value))
        return await self._view_action(user, view, block, element, value, signing)

    async def type_in_view(self, user: str, view_id: str, action_id: str, text: str,
                           block_id: str | None = None, *,
                           typed: Mapping[str, Any] | None = None,
                           signing: Signing = Signing.VALID) -> BotResponse | None:
        """The user types until a text input holds `text`. As in Slack, the app hears of it
        only when the input block has `dispatch_action` and the element's
        `dispatch_action_config` asks for `on_character_entered`; otherwise nothing is sent
        and None is returned (the text is still kept for the submission). `typed` is what
        the user entered elsewhere in the view, as for `submit_view`."""
        view = self._view(view_id)
        if typed:
            view.values = view_values(view, typed)
        block, element = find_element(view.blocks, action_id, block_id)
        view.values.setdefault(str(block.get("block_id")), {})[action_id] = (
            element_state(element, text))
        triggers = (element.get("dispatch_action_config") or {}).get("trigger_actions_on")
        if not block.get("dispatch_action") or "on_character_entered" not in (triggers or []):
            return None
        return await self._view_action(user, view, block, element, text, signing)

    async def _view_action(self, user: str, view: StoredView, block: Mapping[str, Any],
                           element: Mapping[str, Any], value: Any,
                           signing: Signing) -> BotResponse:
        ws = self.workspace
        payload = interaction_base(ws, kind="block_actions", user=self._user(user),
                                   token=self.verification_token,
                                   trigger_id=ws.issue_trigger(user).id)
        payload["container"] = {"type": "view", "view_id": view.id}
        payload["view"] = self.api.render_view(view)
        payload["actions"] = [action_entry(element, str(block.get("block_id")),
                                           ws.ids.ts(), value)]
        return await self._send_interaction(payload, signing)

    def _view(self, view_id: str) -> StoredView:
        view = self.workspace.views.get(view_id)
        if view is None or view.closed:
            raise LookupError(f"no open view {view_id!r}")
        return view

    async def submit_view(self, user: str, view_id: str,
                          values: Mapping[str, Any] | None = None, *,
                          signing: Signing = Signing.VALID) -> BotResponse:
        """Submit a modal with what the user typed (`{action_id: value}`, or
        `{block_id: {action_id: value}}`); the bot's response_action is applied to the view
        stack like Slack would. Raises ValueError for empty required inputs, which Slack's
        client would not let through."""
        ws = self.workspace
        view = self._view(view_id)
        view.values = view_values(view, values or {})
        missing = missing_required(view)
        if missing:
            raise ValueError(f"required inputs left empty: {', '.join(missing)}")
        payload = interaction_base(ws, kind="view_submission", user=self._user(user),
                                   token=self.verification_token,
                                   trigger_id=ws.issue_trigger(user).id)
        payload["view"] = self.api.render_view(view)
        payload["response_urls"] = []
        response = await self._send_interaction(payload, signing, notify=False)
        if response.status == 200:
            self._apply_view_response(view, _json_or_none(response))
        await self._notify()
        return response

    def _apply_view_response(self, view: StoredView, body: Any) -> None:
        ws = self.workspace
        action = body.get("response_action") if isinstance(body, dict) else None
        self.view_errors.pop(view.id, None)
        try:
            if action is None:
                view.closed = True
            elif action == "errors":
                self.view_errors[view.id] = dict(body.get("errors") or {})
            elif action == "update":
                ws.replace_view(view, self.api.check_view("response_action", body.get("view")))
            elif action == "push":
                pushed = self.api.check_view("response_action", body.get("view"))
                ws.store_view(view.user, pushed, root_id=view.root_id, previous_id=view.id)
            elif action == "clear":
                for stacked in ws.stack(view.root_id):
                    stacked.closed = True
            else:
                self._report("view_submission", [Problem(
                    "/response_action", f"unknown response_action {action!r}")])
        except ApiError:
            log.error("view %s kept: the bot's response_action carried an invalid view",
                      view.id)

    async def close_view(self, user: str, view_id: str, *,
                         signing: Signing = Signing.VALID) -> BotResponse | None:
        """The user dismisses a modal; Slack tells the app only if notify_on_close."""
        ws = self.workspace
        view = self._view(view_id)
        for stacked in ws.stack(view.root_id):
            stacked.closed = True
        if not view.view.get("notify_on_close"):
            await self._notify()
            return None
        payload = interaction_base(ws, kind="view_closed", user=self._user(user),
                                   token=self.verification_token,
                                   trigger_id=ws.issue_trigger(user).id)
        payload["view"] = self.api.render_view(view)
        payload["is_cleared"] = False
        return await self._send_interaction(payload, signing)

    async def _send_interaction(self, payload: Mapping[str, Any], signing: Signing, *,
                                notify: bool = True) -> BotResponse:
        response = await self.sender.post_form({"payload": json.dumps(payload)},
                                               signing=signing)
        if notify:
            await self._notify()
        return response

    async def send_event(self, event: Mapping[str, Any], event_id: str | None = None,
                         retry_num: int | None = None, retry_reason: str | None = None, *,
                         signing: Signing = Signing.VALID) -> BotResponse:
        """An Events API `event_callback`; pass the same event_id with retry_num to model
        Slack's redelivery."""
        body = dict(copy.deepcopy(event))
        body.setdefault("event_ts", self.workspace.ids.ts())
        envelope = event_envelope(self.workspace, body, token=self.verification_token,
                                  event_id=event_id or f"Ev{secrets.token_hex(5).upper()}",
                                  event_time=int(self.clock()))
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        response = await self.sender.post_json(envelope, signing=signing,
                                               extra_headers=headers)
        await self._notify()
        return response

    async def say(self, user: str, channel: str, text: str, thread_ts: str | None = None, *,
                  signing: Signing = Signing.VALID) -> list[BotResponse]:
        """A person posts in a channel: the message is stored and Slack's `message` event
        (plus `app_mention` when the text mentions the bot) is sent."""
        ws = self.workspace
        self._user(user)
        resolved = ws.resolve_channel(channel)
        if resolved is None:
            raise LookupError(f"unknown channel {channel!r}")
        message = ws.post(resolved.id, user=user, text=text, thread_ts=thread_ts)
        base: dict[str, Any] = {"user": user, "text": text, "ts": message.ts,
                                "channel": resolved.id, "event_ts": message.ts,
                                "team": ws.team_id, "client_msg_id": secrets.token_hex(8)}
        if thread_ts is not None:
            base["thread_ts"] = thread_ts
        events = [{"type": "message", **base,
                   "channel_type": "im" if resolved.is_im else "channel"}]
        if f"<@{ws.bot_user.id}>" in text:
            events.append({"type": "app_mention", **base})
        return [await self.send_event(event, signing=signing) for event in events]

    async def url_verification(self, challenge: str | None = None, *,
                               signing: Signing = Signing.VALID) -> BotResponse:
        body = {"token": self.verification_token, "type": "url_verification",
                "challenge": challenge or secrets.token_urlsafe(24)}
        return await self.sender.post_json(body, signing=signing)

    async def open_home(self, user: str, *, signing: Signing = Signing.VALID) -> BotResponse:
        """The user opens the app's Home tab."""
        self._user(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.workspace.dm_channel(user).id,
            "tab": "home",
        }
        home = self.home(user)
        if home is not None:
            event["view"] = self.api.render_view(home)
        return await self.send_event(event, signing=signing)


class ApiReply(Exception):
    """A method answered outside the bot-token handlers (the app-token ones)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.body = body


def _token(request: web.Request, raw: Mapping[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    return token or raw.get("token")


def _json_or_none(response: BotResponse) -> Any:
    try:
        return response.json()
    except json.JSONDecodeError:
        return None
