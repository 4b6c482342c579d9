"""The emulated workspace: the single mutable store both directions of the emulator share."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.blockkit import fill_ids
from bot.sandbox.state import (
    DEFAULT_CHANNELS,
    DEFAULT_USERS,
    Channel,
    Ephemeral,
    Ids,
    ResponseUrlPost,
    StoredMessage,
    StoredView,
    Trigger,
    UploadedFile,
    User,
)


@dataclass(frozen=True, slots=True)
class ResponseTarget:
    """Where a response_url leads: the channel, the user who acted and the source message."""

    channel: str
    user: str
    message_ts: str | None = None


class Workspace:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        team_id: str,
        team_domain: str,
        app_id: str,
        bot_user: User,
        bot_id: str,
        users: Iterable[User] = DEFAULT_USERS,
        channels: Iterable[Channel] = DEFAULT_CHANNELS,
        usergroups: dict[str, list[str]] | None = None,
    ) -> None:
        self.clock = clock
        self.ids = Ids(clock)
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user = bot_user
        self.bot_id = bot_id
        self.users: dict[str, User] = {u.id: u for u in (*users, bot_user)}
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        self.usergroups: dict[str, list[str]] = dict(usergroups or {"S0LEADS": ["U0LEAD1"]})
        self.messages: dict[str, list[StoredMessage]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, StoredView] = {}
        self.homes: dict[str, str] = {}
        self.files: dict[str, UploadedFile] = {}
        self.triggers: dict[str, Trigger] = {}
        self.exchanged_triggers: set[str] = set()
        self.response_targets: dict[str, ResponseTarget] = {}
        self.responses: list[ResponseUrlPost] = []

    # people and places

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def add_channel(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        return channel

    def channel_name(self, channel_id: str) -> str:
        channel = self.channels.get(channel_id)
        if channel is None:
            return channel_id
        return "directmessage" if channel.is_im else channel.name

    def dm_channel(self, user_id: str) -> Channel:
        for channel in self.channels.values():
            if channel.is_im and channel.user == user_id:
                return channel
        return self.add_channel(Channel(self.ids.next("D"), user_id, is_im=True, user=user_id))

    def resolve_channel(self, channel_or_user: str) -> Channel | None:
        """Slack accepts a user id as a channel and posts to the app's DM with them."""
        if channel_or_user in self.channels:
            return self.channels[channel_or_user]
        if channel_or_user in self.users:
            return self.dm_channel(channel_or_user)
        by_name = channel_or_user.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == by_name and not c.is_im),
                    None)

    # messages

    def channel_messages(self, channel: str) -> list[StoredMessage]:
        return self.messages.setdefault(channel, [])

    def find_message(self, channel: str, ts: str) -> StoredMessage | None:
        return next((m for m in self.messages.get(channel, []) if m.ts == ts and not m.deleted),
                    None)

    def post(self, channel: str, *, user: str, text: str, **fields: Any) -> StoredMessage:
        if fields.get("blocks") is not None:
            fields["blocks"] = fill_ids(fields["blocks"])
        message = StoredMessage(channel=channel, ts=self.ids.ts(), text=text, user=user,
                                **fields)
        if message.thread_ts is not None:
            parent = self.find_message(channel, message.thread_ts)
            if parent is not None:
                parent.reply_ts.append(message.ts)
                if parent.thread_ts is None:
                    parent.thread_ts = parent.ts
        self.channel_messages(channel).append(message)
        return message

    # interactivity

    def issue_trigger(self, user: str) -> Trigger:
        token = f"{int(self.clock())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        trigger = Trigger(token, user, self.clock())
        self.triggers[token] = trigger
        return trigger

    def issue_response_target(self, target: ResponseTarget) -> str:
        key = secrets.token_hex(12)
        self.response_targets[key] = target
        return key

    def new_view_hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    def open_modal(self, user: str) -> StoredView | None:
        """The top of the user's open modal stack, if a modal is open."""
        modals = [v for v in self.views.values()
                  if v.user == user and v.type == "modal" and not v.closed]
        return modals[-1] if modals else None

    def stack(self, root_id: str) -> list[StoredView]:
        return [v for v in self.views.values() if v.root_id == root_id and not v.closed]

    def find_view(self, view_id: str | None = None,
                  external_id: str | None = None) -> StoredView | None:
        if view_id:
            return self.views.get(view_id)
        return next((v for v in self.views.values()
                     if external_id and v.view.get("external_id") == external_id), None)

    def add_ephemeral(self, channel: str, user: str, *, text: str,
                      blocks: list[dict[str, Any]] | None, thread_ts: str | None = None,
                      source: str = "chat.postEphemeral") -> Ephemeral:
        ephemeral = Ephemeral(channel, user, self.ids.ts(), text, fill_ids(blocks), thread_ts,
                              source)
        self.ephemerals.append(ephemeral)
        return ephemeral

    # views

    def store_view(self, user: str, view: dict[str, Any], *, root_id: str | None = None,
                   previous_id: str | None = None) -> StoredView:
        view_id = self.ids.next("V")
        stored = StoredView(view_id, user, _with_ids(view), self.new_view_hash(),
                            root_id or view_id, previous_id)
        self.views[view_id] = stored
        return stored

    def replace_view(self, stored: StoredView, view: dict[str, Any]) -> None:
        """Slack keeps typed input for blocks whose block_id survives an update."""
        stored.view = _with_ids(view)
        stored.hash = self.new_view_hash()
        kept = {b.get("block_id") for b in stored.blocks}
        stored.values = {k: v for k, v in stored.values.items() if k in kept}

    def stack_of_user(self, user: str) -> list[StoredView]:
        return [v for v in self.views.values()
                if v.user == user and v.type == "modal" and not v.closed]

    def home_view(self, user: str) -> StoredView | None:
        view_id = self.homes.get(user)
        return self.views.get(view_id) if view_id else None


def _with_ids(view: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(view)
    if isinstance(copied.get("blocks"), list):
        copied["blocks"] = fill_ids(copied["blocks"])
    return copied
