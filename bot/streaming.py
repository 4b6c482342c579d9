"""Push streams next to the pollers: mentions arrive as they happen, nothing lost or doubled.

The process holding a source's lease also keeps its stream open (Mastodon's
`user:notification` when the source says `streaming = true`). Every (re)connect is followed by
one catch-up poll from the stored cursor, so whatever was posted while the stream was down is
fetched; duplicates are ignored on ingest. Once that catch-up went through, each streamed
mention also moves the cursor to its position in the same transaction — never backwards, and
never past anything unread: an item the stream could not read stops that until another
catch-up poll (taken at once) covered it.

A stream that fails is retried with growing waits and counted in the source's health like a
failing poll; polls that work in between do not hide it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

from bot.connectors.base import PermanentError, RateLimited, TransientError
from bot.connectors.streams import (
    Streamed,
    StreamingSource,
    StreamOpened,
    Unreadable,
    streaming_of,
)
from bot.polling import MAX_BACKOFF_SECONDS, PERMANENT_RETRY_SECONDS, RENEW_SECONDS, SourcePoller
from bot.services.sources import OpenFailure

log = logging.getLogger(__name__)

STABLE_SECONDS = 60.0
"""A stream that stayed open this long and then closed was healthy: retry from the start."""


def stream_backoff(retry_seconds: float, failures: int) -> float:
    """Doubling from `retry_seconds`, capped like the pollers' backoff."""
    return min(MAX_BACKOFF_SECONDS, retry_seconds * 2 ** min(max(failures - 1, 0), 16))


class SourceStreamer:
    """Keeps one source's stream open while this process holds the source's lease."""

    def __init__(
        self,
        poller: SourcePoller,
        stream: StreamingSource,
        *,
        retry_seconds: float = 5.0,
        check_seconds: float = RENEW_SECONDS,
        stable_seconds: float = STABLE_SECONDS,
    ) -> None:
        self.poller = poller
        self.stream = stream
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self.stable_seconds = stable_seconds
        self.failures = 0
        self.live = asyncio.Event()
        """Set while the stream is open and its catch-up poll went through."""

    @property
    def name(self) -> str:
        return self.poller.name

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            lease = self.poller.lease
            if lease is None:
                await _wait(stop, self.check_seconds)
                continue
            started = time.monotonic()
            try:
                ended = await self._session(stop, lease.fence)
            except RateLimited as exc:
                log.info("source %s: stream rate limited, reconnecting in %.0fs",
                         self.name, exc.retry_after)
                await _wait(stop, max(1.0, exc.retry_after))
                continue
            except TransientError as exc:
                await _wait(stop, await self._failed(str(exc), permanent=False))
                continue
            except PermanentError as exc:
                await self._failed(str(exc), permanent=True)
                await _wait(stop, PERMANENT_RETRY_SECONDS)
                continue
            except SQLAlchemyError as exc:
                log.warning("source %s: database unavailable while streaming (%s)", self.name,
                            exc.__class__.__name__)
                await _wait(stop, stream_backoff(self.retry_seconds, self.failures + 1))
                continue
            finally:
                self.live.clear()
            if not ended or stop.is_set():
                continue  # the lease went elsewhere, or we are stopping
            if time.monotonic() - started >= self.stable_seconds:
                self.failures = 0
                log.info("source %s: stream closed by the server; reconnecting", self.name)
                await _wait(stop, self.retry_seconds)
            else:
                await _wait(stop, await self._failed(
                    f"{self.stream.name}: the stream closed right after opening",
                    permanent=False))

    async def _session(self, stop: asyncio.Event, fence: int) -> bool:
        """One connection, until it ends (True) or the lease or the process stops (False)."""
        consume = asyncio.create_task(self._consume())
        watch = asyncio.create_task(self._watch(stop, fence))
        try:
            await asyncio.wait({consume, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (consume, watch):
                task.cancel()
            await asyncio.wait({consume, watch})
        if consume.cancelled():
            return False
        return consume.result()

    async def _watch(self, stop: asyncio.Event, fence: int) -> None:
        while not stop.is_set():
            lease = self.poller.lease
            if lease is None or lease.fence != fence:
                return
            await _wait(stop, self.check_seconds)

    async def _consume(self) -> bool:
        """Read events; True when the stream ended, False when the lease was lost."""
        synced = False
        async with contextlib.aclosing(self.stream.stream_events()) as events:
            async for event in events:
                if isinstance(event, StreamOpened):
                    self._opened()
                    synced = await self.poller.catch_up()
                    if synced:
                        self.live.set()
                elif isinstance(event, Streamed):
                    advance = (partial(_advance, self.stream, event.position)
                               if synced and event.position else None)
                    if not await self.poller.ingest_streamed(event.mention, advance):
                        return False
                elif isinstance(event, Unreadable):
                    log.warning("source %s: %s", self.name, event.reason)
                    if event.position is None:
                        # It may have been a mention: the REST API fills the gap.
                        synced = await self.poller.catch_up()
        return True

    def _opened(self) -> None:
        if self.failures:
            log.info("source %s: stream open again after %d failure(s)", self.name,
                     self.failures)
        else:
            log.info("source %s: stream open", self.name)
        self.poller.stream_trouble = None

    async def _failed(self, error: str, *, permanent: bool) -> float:
        """Count the failure in the source's health; returns the wait before reconnecting."""
        self.failures += 1
        message = f"stream: {error}"
        self.poller.stream_trouble = OpenFailure(self.failures, message, permanent)
        await self.poller.note_failed(message, permanent=permanent, count=self.failures)
        return stream_backoff(self.retry_seconds, self.failures)


def _advance(stream: StreamingSource, position: str, cursor: str | None) -> str | None:
    return stream.advance_cursor(cursor, position)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))


def streamers_for(pollers: Sequence[SourcePoller]) -> list[SourceStreamer]:
    """A streamer for each poller whose connector streams and whose source turned it on."""
    streamers = []
    for poller in pollers:
        stream = streaming_of(poller.connector)
        if stream is not None:
            retry = float(poller.source.option("stream_retry_seconds", 5.0))
            streamers.append(SourceStreamer(poller, stream, retry_seconds=max(retry, 0.01)))
    return streamers
