"""What the emulated workspace holds: people, channels, messages, views, files.

Kept apart from the HTTP layer so tests and the sandbox page can read and seed it directly.
Message and view records are mutable on purpose: Slack edits them in place (chat.update,
views.update), and the emulator mirrors that.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    is_admin: bool = False
    email: str = ""
    tz: str = "Europe/London"

    def to_slack(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": real_name,
            "tz": self.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "real_name": real_name,
                "real_name_normalized": real_name,
                "display_name": self.display_name or self.name,
                "display_name_normalized": self.display_name or self.name,
                "email": self.email or f"{self.name}@example.com",
                "image_48": "",
                "team": team_id,
            },
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    is_im: bool = False
    user: str | None = None

    def to_slack(self, created: int) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "created": created, "is_im": True, "is_org_shared": False,
                    "user": self.user, "is_user_deleted": False, "priority": 0}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "created": created,
            "creator": "U0LEAD1",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass(slots=True)
class StoredMessage:
    """A message as Slack keeps it; `edit_count` and `versions` are emulator extras."""

    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None = None
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    files: list[dict[str, Any]] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    reply_ts: list[str] = field(default_factory=list)
    edited_ts: str | None = None
    edit_count: int = 0
    versions: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_slack(self, *, team_id: str, app_id: str,
                 include_metadata: bool = True) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "text": self.text, "user": self.user,
                                   "ts": self.ts, "team": team_id}
        if self.bot_id is not None:
            message["bot_id"] = self.bot_id
            message["app_id"] = app_id
        if self.blocks is not None:
            message["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            message["attachments"] = copy.deepcopy(self.attachments)
        if self.files is not None:
            message["files"] = copy.deepcopy(self.files)
            message["upload"] = False
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        if self.reply_ts:
            message["reply_count"] = len(self.reply_ts)
            message["latest_reply"] = self.reply_ts[-1]
        if self.is_reply:
            message["parent_user_id"] = self.user
        if self.edited_ts is not None:
            message["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            message["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if include_metadata and self.metadata is not None:
            message["metadata"] = copy.deepcopy(self.metadata)
        return message


@dataclass(frozen=True, slots=True)
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"


@dataclass(slots=True)
class StoredView:
    """A modal or App Home view; `root_id` groups a modal's stack."""

    id: str
    user: str
    view: dict[str, Any]
    hash: str
    root_id: str
    previous_id: str | None = None
    values: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    closed: bool = False

    @property
    def type(self) -> str:
        return str(self.view.get("type"))

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.view.get("blocks") or [])

    def to_slack(self, *, team_id: str, app_id: str, bot_id: str) -> dict[str, Any]:
        view = copy.deepcopy(self.view)
        view.update(
            id=self.id,
            team_id=team_id,
            hash=self.hash,
            state={"values": copy.deepcopy(self.values)},
            app_id=app_id,
            bot_id=bot_id,
            app_installed_team_id=team_id,
            root_view_id=self.root_id,
            previous_view_id=self.previous_id,
        )
        view.setdefault("private_metadata", "")
        view.setdefault("callback_id", "")
        view.setdefault("external_id", "")
        view.setdefault("clear_on_close", False)
        view.setdefault("notify_on_close", False)
        if view.get("type") == "modal":
            view.setdefault("close", None)
            view.setdefault("submit", None)
        return view


@dataclass(slots=True)
class UploadedFile:
    id: str
    name: str
    length: int
    title: str = ""
    content: bytes | None = None
    channels: list[str] = field(default_factory=list)
    completed: bool = False

    def to_slack(self, *, user: str, created: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": created,
            "timestamp": created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": "application/octet-stream",
            "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "binary",
            "user": user,
            "size": len(self.content) if self.content is not None else self.length,
            "is_public": True,
            "channels": list(self.channels),
            "url_private": f"/files/{self.id}/{self.name}",
        }


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    user: str
    issued_at: float


@dataclass(frozen=True, slots=True)
class ResponseUrlPost:
    """What the bot posted to a response_url the emulator handed out."""

    id: str
    body: dict[str, Any]
    at: datetime


DEFAULT_USERS = (
    User("U0AGENT1", "ann", "Ann Agent", "ann"),
    User("U0AGENT2", "bob", "Bob Agent", "bob"),
    User("U0LEAD1", "lea", "Lea Lead", "lea", is_admin=True),
)
DEFAULT_CHANNELS = (
    Channel("C0MENTIONS", "mentions"),
    Channel("C0APPROVALS", "approvals"),
    Channel("C0ALERTS", "alerts"),
)


class Ids:
    """Slack-looking identifiers; `ts` values are unique and strictly increasing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counter = itertools.count(1)
        self._last_ts = 0

    def next(self, prefix: str) -> str:
        return f"{prefix}0{next(self._counter):08X}"

    def ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_ts + 100)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def utcnow() -> datetime:
    return datetime.now(UTC)
