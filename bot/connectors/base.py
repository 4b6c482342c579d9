"""The one small protocol every network implements, and the errors services may see.

Services never see aiohttp: HTTP failures are mapped to these three errors at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from bot.domain.mention import Mention


class ConnectorError(Exception):
    """Base of every failure a connector reports."""


class TransientError(ConnectorError):
    """Worth retrying later: timeouts, connection resets, 5xx."""


class RateLimited(TransientError):
    """The network asked us to wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying will not help (4xx, refused reply, expired token); people must see the reason."""


@dataclass(frozen=True, slots=True)
class Page:
    """What one fetch returned: mentions plus the cursor that covers exactly them.

    The caller stores `mentions` and `cursor` in one transaction, so a crash never skips
    nor repeats. `more` says another fetch right away would return more.
    """

    mentions: Sequence[Mention]
    cursor: str | None
    more: bool = False


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """A reply to publish. `idempotency_key` is stable across retries of the same reply."""

    case_id: int
    mention: Mention
    text: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PostedReply:
    external_id: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    """How a network measures a reply. `count` returns the length as the network counts it."""

    max_length: int
    count: Callable[[str], int] = field(default=len)
    unit: str = "characters"
    max_bytes: int | None = None


@runtime_checkable
class Connector(Protocol):
    """A network: fetch mentions since a cursor, post a reply, say how replies are measured."""

    name: str
    can_reply: bool

    async def fetch(self, cursor: str | None) -> Page: ...

    async def post_reply(self, request: ReplyRequest) -> PostedReply: ...

    def reply_limits(self) -> ReplyLimits: ...

    def reply_allowed(self, mention: Mention) -> tuple[bool, str]:
        """Whether this mention may be answered on the network, and if not, why."""
        ...


def is_http_url(value: object) -> bool:
    """Whether a configured URL is one the connectors may call: http(s) with a host."""
    if not isinstance(value, str) or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
