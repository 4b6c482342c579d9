"""What a network's push stream tells the streamer (bot/streaming.py), network-independent.

A stream has no cursor of its own: each pushed item carries its `position` in the polled list
(Mastodon's notification id), so once a catch-up poll has covered everything before the
stream opened, the stored cursor may follow the stream — forward only, and only past items
that were ingested.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.domain.mention import Mention


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The network accepted the stream; items from now on will be pushed."""


@dataclass(frozen=True, slots=True)
class Streamed:
    mention: Mention
    position: str | None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An item that could not be read. Without a `position` it may hide a mention, so the
    streamer polls once to fill the gap."""

    reason: str
    position: str | None = None


StreamEvent = StreamOpened | Streamed | Unreadable


@runtime_checkable
class StreamingSource(Protocol):
    """A connector that can also push mentions as they happen."""

    name: str
    stream_enabled: bool

    def stream_events(self) -> AsyncGenerator[StreamEvent, None]:
        """Events until the stream ends; failures raise the connector errors."""
        ...

    def advance_cursor(self, cursor: str | None, position: str) -> str | None:
        """The stored cursor moved to cover `position`; never moved backwards."""
        ...


def streaming_of(connector: object) -> StreamingSource | None:
    """The connector as a stream, when it has one and its source turned it on."""
    if isinstance(connector, StreamingSource) and connector.stream_enabled:
        return connector
    return None
