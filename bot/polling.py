"""Pollers: each pollable source is read page by page, exactly one process at a time.

One step (`SourcePoller.poll_once`) reads the stored cursor, fetches one page and ingests it
with the page's cursor in the same transaction, under the source's lease fence. So a restart
between pages continues from the last committed page (nothing lost, nothing repeated), and a
process that was frozen past its lease cannot commit after another took over.

Waiting follows the network: the next page at once while `Page.more`, the source's
`poll_seconds` otherwise, the network's reset time when rate limited, growing backoff on
transient errors and a slow retry after a permanent one (logged once, cursor kept).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.connectors.base import (
    Connector,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
)
from bot.domain.mention import Mention, SourceKind
from bot.services.context import Clock, Services
from bot.services.ingest import ingest_batch
from bot.services.sources import OpenFailure, check_sources, note_failure, note_success
from bot.settings import SourceConfig
from db.leases import Lease, LeaseLost, acquire_lease, release_lease

if TYPE_CHECKING:
    from bot.wiring import Components


class Streamer(Protocol):
    """A source's push stream kept open next to its poller (bot/streaming.py)."""

    async def run(self, stop: asyncio.Event) -> None: ...

log = logging.getLogger(__name__)

POLLABLE = frozenset({SourceKind.X, SourceKind.MASTODON, SourceKind.BLUESKY, SourceKind.REDDIT,
                      SourceKind.RSS, SourceKind.HACKERNEWS})
LEASE_TTL = timedelta(seconds=10)
RENEW_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 900.0
PERMANENT_RETRY_SECONDS = 600.0
HEALTH_CHECK_SECONDS = 30.0
NO_REPLY = "Replies cannot be published through this source"


def holder_id() -> str:
    """This process, as lease holders are named: readable, and unique across restarts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_name(source_name: str) -> str:
    return f"source:{source_name}"


def backoff_seconds(poll_seconds: float, failures: int) -> float:
    """Doubling from the poll interval, capped, so a failing API is never hammered."""
    base = max(poll_seconds, 5.0)
    return min(MAX_BACKOFF_SECONDS, base * 2 ** min(max(failures - 1, 0), 16))


def mark_replyable(connector: Connector, mention: Mention) -> Mention:
    """Note on the mention why it cannot be answered, so its card says so instead of offering
    a draft (X only allows replies to posts that mention or quote the brand)."""
    allowed, why = connector.reply_allowed(mention)
    if allowed and not connector.can_reply:
        allowed, why = False, NO_REPLY
    if allowed:
        return mention
    return replace(mention, extra={**mention.extra, "reply_blocked": why or NO_REPLY})


class SourcePoller:
    """Reads one source. Polls only while `lease` is set (by `Polling.keep_leases`)."""

    def __init__(
        self,
        source: SourceConfig,
        connector: Connector,
        services: Services,
        *,
        admin_channel: str,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.source = source
        self.connector = connector
        self.services = services
        self.admin_channel = admin_channel
        self.wake = wake
        self.lease: Lease | None = None
        # Polls and streamed mentions of this source take turns, so the cursor one of them
        # read is still the stored one when it commits (it never moves backwards).
        self.lock = asyncio.Lock()
        self.stream_trouble: OpenFailure | None = None

    @property
    def name(self) -> str:
        return self.source.name

    async def poll_once(self) -> float:
        """One page: fetch since the stored cursor, ingest with the new cursor; returns how
        many seconds to wait before the next call."""
        delay, _ = await self.poll_page()
        return delay

    async def catch_up(self, max_pages: int = 100) -> bool:
        """Poll page after page until nothing newer waits; False when a page failed."""
        for _ in range(max_pages):
            delay, done = await self.poll_page()
            if done:
                return True
            if delay:
                return False
        return False

    async def poll_page(self) -> tuple[float, bool]:
        """`poll_once`, and whether the page went through with nothing newer waiting."""
        async with self.lock:
            return await self._poll_page()

    async def ingest_streamed(self, mention: Mention,
                              advance: Callable[[str | None], str | None] | None) -> bool:
        """One mention the stream pushed, ingested under the lease fence like a polled one.

        With `advance`, the stored cursor moves to cover it in the same transaction; the
        streamer passes it only when everything before the mention is known to be stored.
        False when the lease is gone (nothing was saved).
        """
        async with self.lock:
            lease = self.lease
            if lease is None:
                return False
            cursor = None
            if advance is not None:
                async with self.services.db.transaction() as tx:
                    row = await tx.get_cursor(self.name)
                cursor = (self.name, advance(row.cursor if row is not None else None))
            try:
                result = await ingest_batch(
                    self.services, [mark_replyable(self.connector, mention)],
                    source_name=self.name, cursor=cursor, fence=lease)
            except LeaseLost:
                log.info("source %s: lease lost to another process; streamed mention not "
                         "saved", self.name)
                if self.lease is lease:
                    self.lease = None
                return False
            arrived = len(result.created) + len(result.joined)
            await note_success(self.services.db, self.source, self.services.clock(),
                               mentions=arrived, admin_channel=self.admin_channel)
        if arrived:
            self.wake()
        return True

    async def _poll_page(self) -> tuple[float, bool]:
        lease = self.lease
        if lease is None:
            return RENEW_SECONDS, False
        db = self.services.db
        async with db.transaction() as tx:
            row = await tx.get_cursor(self.name)
            cursor = row.cursor if row is not None else None
        try:
            page = await self.connector.fetch(cursor)
        except RateLimited as exc:
            log.info("source %s: rate limited, next poll in %.0fs", self.name, exc.retry_after)
            return max(1.0, exc.retry_after), False
        except TransientError as exc:
            note = await self.note_failed(str(exc), permanent=False)
            return backoff_seconds(self.source.poll_seconds, note), False
        except PermanentError as exc:
            await self.note_failed(str(exc), permanent=True)
            return max(PERMANENT_RETRY_SECONDS, self.source.poll_seconds), False
        except (ConnectorError, ValueError, KeyError, TypeError) as exc:
            await self.note_failed(f"unexpected answer ({exc.__class__.__name__}: {exc})",
                               permanent=True)
            return max(PERMANENT_RETRY_SECONDS, self.source.poll_seconds), False
        mentions = [mark_replyable(self.connector, m) for m in page.mentions]
        try:
            result = await ingest_batch(self.services, mentions, source_name=self.name,
                                        cursor=(self.name, page.cursor), fence=lease)
        except LeaseLost:
            log.info("source %s: lease lost to another process; page not saved", self.name)
            if self.lease is lease:
                self.lease = None
            return RENEW_SECONDS, False
        arrived = len(result.created) + len(result.joined)
        await note_success(db, self.source, self.services.clock(), mentions=arrived,
                           admin_channel=self.admin_channel, still_failing=self.stream_trouble)
        if arrived:
            self.wake()
        return (0.0, False) if page.more else (self.source.poll_seconds, True)

    async def note_failed(self, error: str, *, permanent: bool, count: int | None = None
                          ) -> int:
        """Count a failure in the source's health, logging a recurring error once."""
        note = await note_failure(self.services.db, self.source, self.services.clock(), error,
                                  permanent=permanent, admin_channel=self.admin_channel,
                                  count=count)
        if note.previous_error != error:
            log.warning("source %s: %s%s", self.name, error,
                        " (cursor kept; will retry later)" if permanent else " (will retry)")
        return note.failures


class Polling:
    """Every poller of this process, the lease keeper and the health check."""

    def __init__(
        self,
        services: Services,
        pollers: Sequence[SourcePoller],
        sources: Sequence[SourceConfig],
        *,
        admin_channel: str,
        holder: str | None = None,
        clock: Clock | None = None,
        lease_ttl: timedelta = LEASE_TTL,
        renew_seconds: float = RENEW_SECONDS,
        streamers: Sequence[Streamer] = (),
    ) -> None:
        self.services = services
        self.pollers = list(pollers)
        self.streamers = list(streamers)
        self.sources = list(sources)
        self.admin_channel = admin_channel
        self.holder = holder or holder_id()
        self.clock = clock or services.clock
        self.lease_ttl = lease_ttl
        self.renew_seconds = renew_seconds

    async def keep_leases(self) -> None:
        """Take or renew each source's lease; a poller whose lease went elsewhere stops."""
        for poller in self.pollers:
            try:
                lease = await acquire_lease(self.services.db, lease_name(poller.name),
                                            self.holder, self.clock(), self.lease_ttl)
            except SQLAlchemyError as exc:
                log.warning("source %s: lease check failed (%s)", poller.name,
                            exc.__class__.__name__)
                lease = None
            before = poller.lease
            if lease is not None and (before is None or before.fence != lease.fence):
                log.info("source %s: polling here (fence %d)", poller.name, lease.fence)
            elif lease is None and before is not None:
                log.info("source %s: polled by another process now", poller.name)
            poller.lease = lease

    async def check_health(self) -> None:
        await check_sources(self.services.db, self.sources, self.clock(),
                            admin_channel=self.admin_channel)

    async def release(self) -> None:
        for poller in self.pollers:
            lease, poller.lease = poller.lease, None
            if lease is not None:
                with suppress(SQLAlchemyError):
                    await release_lease(self.services.db, lease)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: keep leases, poll the sources held, check health; then release."""
        if not self.pollers and not any(s.silence_alert_minutes for s in self.sources):
            return
        with suppress(SQLAlchemyError):
            await self.keep_leases()  # so polling starts at once, not after a renewal period
        tasks = [asyncio.create_task(self._every(stop, self.renew_seconds, self.keep_leases)),
                 asyncio.create_task(self._every(stop, HEALTH_CHECK_SECONDS, self.check_health))]
        tasks += [asyncio.create_task(self._poll_loop(stop, p)) for p in self.pollers]
        tasks += [asyncio.create_task(s.run(stop)) for s in self.streamers]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            await self.release()

    async def _every(self, stop: asyncio.Event, seconds: float,
                     step: Callable[[], object]) -> None:
        while not stop.is_set():
            try:
                await step()  # type: ignore[misc]
            except SQLAlchemyError as exc:
                log.warning("%s failed (%s)", getattr(step, "__name__", "step"),
                            exc.__class__.__name__)
            await _wait(stop, seconds)

    async def _poll_loop(self, stop: asyncio.Event, poller: SourcePoller) -> None:
        while not stop.is_set():
            if poller.lease is None:
                await _wait(stop, self.renew_seconds)
                continue
            try:
                delay = await poller.poll_once()
            except SQLAlchemyError as exc:
                log.warning("source %s: database unavailable (%s)", poller.name,
                            exc.__class__.__name__)
                delay = backoff_seconds(poller.source.poll_seconds, 1)
            await _wait(stop, delay)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def build_polling(
    services: Services,
    sources: Sequence[SourceConfig],
    connectors: Mapping[str, Connector],
    *,
    admin_channel: str,
    wake: Callable[[], None] = lambda: None,
    holder: str | None = None,
) -> Polling:
    """A poller for every enabled pollable source that has a connector, and a streamer for
    each of those whose source turned streaming on."""
    from bot.streaming import streamers_for  # streaming builds on the pollers

    pollers = [
        SourcePoller(s, connectors[s.name], services, admin_channel=admin_channel, wake=wake)
        for s in sources
        if s.enabled and s.kind in POLLABLE and s.name in connectors
    ]
    return Polling(services, pollers, [s for s in sources if s.kind is not SourceKind.DEMO],
                   admin_channel=admin_channel, holder=holder, streamers=streamers_for(pollers))


def polling_for(components: Components) -> Polling:
    """The pollers of a built process (`mentiondesk run` and `mentiondesk worker`)."""
    slack = components.settings.file.slack
    return build_polling(components.services, components.settings.file.sources,
                         components.connectors,
                         admin_channel=slack.admin_channel or slack.alerts_channel,
                         wake=components.dispatcher.wake)
