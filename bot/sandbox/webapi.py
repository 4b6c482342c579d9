"""Slack Web API methods the bot calls, answered from the emulated workspace.

Each method takes the request's arguments (already merged from query string, form and JSON
body) and returns Slack's JSON answer, or raises `ApiError` with Slack's error code. Shapes
follow the method pages on docs.slack.dev.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.sandbox.blockkit import fill_ids
from bot.sandbox.limits import (
    Problem,
    check_message_blocks,
    check_message_text,
    check_view,
)
from bot.sandbox.state import StoredMessage, StoredView, UploadedFile
from bot.sandbox.workspace import Workspace

TRIGGER_LIFETIME_SECONDS = 3.0
VIEW_STACK_MAX = 3
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "files"})

ViolationSink = Callable[[str, Sequence[Problem]], None]


class ApiError(Exception):
    """A Slack error answer: HTTP 200 with `{"ok": false, "error": code, ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


class Args:
    """Request arguments with Slack's loose typing (JSON strings, "1"/"true" flags)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw: dict[str, Any] = {}
        for key, value in raw.items():
            if key in _JSON_FIELDS and isinstance(value, str):
                try:
                    value = json.loads(value) if value.strip() else None
                except json.JSONDecodeError as exc:
                    raise ApiError("invalid_json", detail=f"{key}: {exc}") from exc
            self.raw[key] = value

    def get(self, name: str) -> Any:
        return self.raw.get(name)

    def required(self, name: str, *, error: str | None = None) -> str:
        value = self.raw.get(name)
        if value is None or value == "":
            message = f"[ERROR] missing required field: {name}"
            raise ApiError(error or "invalid_arguments",
                           response_metadata={"messages": [message]})
        return str(value)

    def optional(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None or value == "" else str(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def integer(self, name: str, default: int) -> int:
        value = self.raw.get(name)
        try:
            return default if value in (None, "") else int(value)
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_arguments") from exc

    def number(self, name: str) -> float | None:
        value = self.raw.get(name)
        try:
            return None if value in (None, "") else float(value)
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_arguments") from exc

    def opt_bool(self, name: str) -> bool | None:
        return None if self.raw.get(name) is None else self.flag(name)


def _page(items: list[Any], args: Args, default_limit: int) -> tuple[list[Any], str]:
    """Cursor pagination as Slack does it: an opaque cursor, empty when done."""
    limit = max(1, min(args.integer("limit", default_limit), 1000))
    cursor = args.optional("cursor")
    start = int(cursor.removeprefix("offset:")) if cursor else 0
    chunk = items[start:start + limit]
    next_cursor = f"offset:{start + limit}" if start + limit < len(items) else ""
    return chunk, next_cursor


class WebApi:
    """Method name -> handler; `base_url` is read late because the port is known at start."""

    def __init__(self, workspace: Workspace, report: ViolationSink,
                 base_url: Callable[[], str]) -> None:
        self.ws = workspace
        self._report = report
        self._base_url = base_url
        self.handlers: dict[str, Callable[[Args], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "chat.delete": self.chat_delete,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.open": self.conversations_open,
            "conversations.info": self.conversations_info,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "usergroups.users.list": self.usergroups_users_list,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "reactions.add": self.reactions_add,
        }

    # checks shared by several methods

    def check_message(self, method: str, args: Args, *, require_content: bool) -> None:
        text, blocks = args.get("text"), args.get("blocks")
        if require_content and not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text")
        problems = check_message_text(text)
        if problems:
            self._report(method, problems)
            raise ApiError("msg_too_long")
        if blocks is not None:
            self.check_blocks(method, blocks)
        metadata = args.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, Mapping)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), Mapping)
        ):
            self._report(method, [Problem("/metadata", "must have event_type and event_payload")])
            raise ApiError("invalid_metadata_format")

    def check_blocks(self, method: str, blocks: object) -> None:
        problems = check_message_blocks(blocks)
        if problems:
            self._report(method, problems)
            raise ApiError(
                "invalid_blocks",
                errors=[str(p) for p in problems],
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )

    def check_view(self, method: str, view: object) -> dict[str, Any]:
        problems = check_view(view)
        if problems:
            self._report(method, problems)
            raise ApiError("invalid_arguments",
                           response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        assert isinstance(view, dict)
        return view

    def channel(self, args: Args, name: str = "channel") -> str:
        channel = self.ws.resolve_channel(args.required(name, error="channel_not_found"))
        if channel is None:
            raise ApiError("channel_not_found")
        return channel.id

    def message(self, channel: str, ts: str) -> StoredMessage:
        message = self.ws.find_message(channel, ts)
        if message is None:
            raise ApiError("message_not_found")
        return message

    def render(self, message: StoredMessage, *, include_metadata: bool = True) -> dict[str, Any]:
        return message.to_slack(team_id=self.ws.team_id, app_id=self.ws.app_id,
                                include_metadata=include_metadata)

    def render_view(self, view: StoredView) -> dict[str, Any]:
        return view.to_slack(team_id=self.ws.team_id, app_id=self.ws.app_id,
                             bot_id=self.ws.bot_id)

    # auth

    def auth_test(self, args: Args) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.ws.team_domain}.slack.com/",
            "team": self.ws.team_domain,
            "user": self.ws.bot_user.name,
            "team_id": self.ws.team_id,
            "user_id": self.ws.bot_user.id,
            "bot_id": self.ws.bot_id,
            "is_enterprise_install": False,
        }

    # chat

    def chat_post_message(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        self.check_message("chat.postMessage", args, require_content=True)
        message = self.ws.post(
            channel,
            user=self.ws.bot_user.id,
            text=args.optional("text") or "",
            bot_id=self.ws.bot_id,
            blocks=args.get("blocks"),
            attachments=args.get("attachments"),
            thread_ts=args.optional("thread_ts"),
            metadata=args.get("metadata"),
            unfurl_links=args.opt_bool("unfurl_links"),
            unfurl_media=args.opt_bool("unfurl_media"),
        )
        return {"ok": True, "channel": channel, "ts": message.ts,
                "message": self.render(message)}

    def chat_update(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        message = self.message(channel, args.required("ts", error="message_not_found"))
        if message.user != self.ws.bot_user.id:
            raise ApiError("cant_update_message")
        self.check_message("chat.update", args, require_content=False)
        message.versions.append(self.render(message))
        if args.get("text") is not None:
            message.text = str(args.get("text"))
        if args.get("blocks") is not None:
            message.blocks = fill_ids(args.get("blocks"))
        if args.get("attachments") is not None:
            message.attachments = args.get("attachments")
        if args.get("metadata") is not None:
            message.metadata = args.get("metadata")
        message.edit_count += 1
        message.edited_ts = self.ws.ids.ts()
        return {"ok": True, "channel": channel, "ts": message.ts, "text": message.text,
                "message": self.render(message)}

    def chat_post_ephemeral(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        user = args.required("user", error="user_not_in_channel")
        if user not in self.ws.users:
            raise ApiError("user_not_in_channel")
        self.check_message("chat.postEphemeral", args, require_content=True)
        ephemeral = self.ws.add_ephemeral(
            channel, user, text=args.optional("text") or "", blocks=args.get("blocks"),
            thread_ts=args.optional("thread_ts"),
        )
        return {"ok": True, "message_ts": ephemeral.ts}

    def chat_get_permalink(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        message = self.message(channel, args.required("message_ts", error="message_not_found"))
        link = (f"https://{self.ws.team_domain}.slack.com/archives/{channel}/"
                f"p{message.ts.replace('.', '')}")
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def chat_delete(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        message = self.message(channel, args.required("ts", error="message_not_found"))
        if message.user != self.ws.bot_user.id:
            raise ApiError("cant_delete_message")
        message.deleted = True
        return {"ok": True, "channel": channel, "ts": message.ts}

    # conversations

    def conversations_history(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        oldest, latest = args.number("oldest"), args.number("latest")
        inclusive = args.flag("inclusive")
        with_metadata = args.flag("include_all_metadata")

        def in_window(ts: float) -> bool:
            low = oldest is None or ts > oldest or (inclusive and ts == oldest)
            high = latest is None or ts < latest or (inclusive and ts == latest)
            return low and high

        visible = [m for m in reversed(self.ws.channel_messages(channel))
                   if not m.deleted and not m.is_reply and in_window(float(m.ts))]
        chunk, next_cursor = _page(visible, args, 100)
        return {
            "ok": True,
            "messages": [self.render(m, include_metadata=with_metadata) for m in chunk],
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def conversations_replies(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        parent = self.ws.find_message(channel, args.required("ts", error="thread_not_found"))
        if parent is None:
            raise ApiError("thread_not_found")
        root = parent.thread_ts or parent.ts
        thread = [m for m in self.ws.channel_messages(channel)
                  if not m.deleted and (m.ts == root or m.thread_ts == root)]
        chunk, next_cursor = _page(thread, args, 1000)
        with_metadata = args.flag("include_all_metadata")
        return {
            "ok": True,
            "messages": [self.render(m, include_metadata=with_metadata) for m in chunk],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def conversations_open(self, args: Args) -> dict[str, Any]:
        if args.optional("channel"):
            channel_id = self.channel(args)
            return {"ok": True, "no_op": True, "already_open": True,
                    "channel": {"id": channel_id}}
        users = [u for u in args.required("users", error="users_list_not_supplied").split(",") if u]
        if len(users) != 1:
            raise ApiError("not_enough_users" if not users else "too_many_users")
        if users[0] not in self.ws.users:
            raise ApiError("user_not_found")
        existed = any(c.is_im and c.user == users[0] for c in self.ws.channels.values())
        channel = self.ws.dm_channel(users[0])
        body = {"id": channel.id}
        if args.flag("return_im"):
            body = channel.to_slack(created=int(self.ws.clock()))
        return {"ok": True, "no_op": existed, "already_open": existed, "channel": body}

    def conversations_info(self, args: Args) -> dict[str, Any]:
        channel = self.ws.channels[self.channel(args)]
        return {"ok": True, "channel": channel.to_slack(created=1_700_000_000)}

    # views

    def _exchange_trigger(self, args: Args) -> str:
        token = args.optional("trigger_id") or args.optional("interactivity_pointer")
        if token is None:
            raise ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] one of trigger_id or interactivity_pointer is required"]})
        trigger = self.ws.triggers.get(token)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if self.ws.clock() - trigger.issued_at > TRIGGER_LIFETIME_SECONDS:
            raise ApiError("expired_trigger_id")
        if token in self.ws.exchanged_triggers:
            raise ApiError("exchanged_trigger_id")
        self.ws.exchanged_triggers.add(token)
        return trigger.user

    def views_open(self, args: Args) -> dict[str, Any]:
        view = self.check_view("views.open", args.get("view"))
        if view.get("type") != "modal":
            raise ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] views.open only opens modals [json-pointer:/view/type]"]})
        user = self._exchange_trigger(args)
        for stale in self.ws.stack_of_user(user):
            stale.closed = True
        stored = self.ws.store_view(user, view)
        return {"ok": True, "view": self.render_view(stored)}

    def views_push(self, args: Args) -> dict[str, Any]:
        view = self.check_view("views.push", args.get("view"))
        user = self._exchange_trigger(args)
        top = self.ws.open_modal(user)
        if top is None:
            raise ApiError("not_found")
        if len(self.ws.stack(top.root_id)) >= VIEW_STACK_MAX:
            raise ApiError("push_limit_reached")
        stored = self.ws.store_view(user, view, root_id=top.root_id, previous_id=top.id)
        return {"ok": True, "view": self.render_view(stored)}

    def views_update(self, args: Args) -> dict[str, Any]:
        view = self.check_view("views.update", args.get("view"))
        stored = self.ws.find_view(args.optional("view_id"), args.optional("external_id"))
        if stored is None:
            raise ApiError("not_found")
        expected = args.optional("hash")
        if expected is not None and expected != stored.hash:
            raise ApiError("hash_conflict")
        self.ws.replace_view(stored, view)
        return {"ok": True, "view": self.render_view(stored)}

    def views_publish(self, args: Args) -> dict[str, Any]:
        user = args.required("user_id", error="user_not_found")
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        view = self.check_view("views.publish", args.get("view"))
        if view.get("type") != "home":
            raise ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] views.publish only publishes home views "
                             "[json-pointer:/view/type]"]})
        current = self.ws.home_view(user)
        expected = args.optional("hash")
        if current is not None and expected is not None and expected != current.hash:
            raise ApiError("hash_conflict")
        if current is None:
            current = self.ws.store_view(user, view)
            self.ws.homes[user] = current.id
        else:
            self.ws.replace_view(current, view)
        return {"ok": True, "view": self.render_view(current)}

    # people

    def users_info(self, args: Args) -> dict[str, Any]:
        user = self.ws.users.get(args.required("user", error="user_not_found"))
        if user is None:
            raise ApiError("user_not_found")
        return {"ok": True, "user": user.to_slack(self.ws.team_id)}

    def users_list(self, args: Args) -> dict[str, Any]:
        members = [u.to_slack(self.ws.team_id) for u in self.ws.users.values()]
        chunk, next_cursor = _page(members, args, 200)
        return {"ok": True, "members": chunk, "cache_ts": int(self.ws.clock()),
                "response_metadata": {"next_cursor": next_cursor}}

    def usergroups_users_list(self, args: Args) -> dict[str, Any]:
        group = args.required("usergroup", error="no_such_subteam")
        if group not in self.ws.usergroups:
            raise ApiError("no_such_subteam")
        return {"ok": True, "users": list(self.ws.usergroups[group])}

    # files

    def files_get_upload_url_external(self, args: Args) -> dict[str, Any]:
        name = args.required("filename")
        length = args.integer("length", -1)
        if length < 0:
            raise ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] missing required field: length"]})
        file = UploadedFile(self.ws.ids.next("F"), name, length)
        self.ws.files[file.id] = file
        return {"ok": True, "upload_url": f"{self._base_url()}upload/v1/{file.id}",
                "file_id": file.id}

    def files_complete_upload_external(self, args: Args) -> dict[str, Any]:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] missing required field: files"]})
        channels = [c for c in (args.optional("channels") or "").split(",") if c]
        if args.optional("channel_id"):
            channels.insert(0, self.channel(args, "channel_id"))
        completed: list[UploadedFile] = []
        for entry in entries:
            file = self.ws.files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
            if file is None or file.content is None:
                raise ApiError("file_not_found")
            file.title = str(entry.get("title") or file.name)
            file.completed = True
            completed.append(file)
        now = int(self.ws.clock())
        for channel in channels:
            resolved = self.ws.resolve_channel(channel)
            if resolved is None:
                raise ApiError("channel_not_found")
            for file in completed:
                file.channels.append(resolved.id)
            self.ws.post(
                resolved.id,
                user=self.ws.bot_user.id,
                text=args.optional("initial_comment") or "",
                bot_id=self.ws.bot_id,
                thread_ts=args.optional("thread_ts"),
                files=[f.to_slack(user=self.ws.bot_user.id, created=now) for f in completed],
            )
        return {"ok": True,
                "files": [f.to_slack(user=self.ws.bot_user.id, created=now) for f in completed]}

    # reactions

    def reactions_add(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        message = self.message(channel, args.required("timestamp", error="message_not_found"))
        name = args.required("name", error="invalid_name").strip(":")
        users = message.reactions.setdefault(name, [])
        if self.ws.bot_user.id in users:
            raise ApiError("already_reacted")
        users.append(self.ws.bot_user.id)
        return {"ok": True}
