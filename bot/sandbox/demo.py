"""The demo feed: hands each due demo mention to the ordinary ingest path.

It polls the demo connector the way a network poller would (fetch since the stored cursor,
ingest the page and the new cursor in one transaction) but sleeps exactly until the next
mention is due, so a replay at any pace costs nothing in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from bot.connectors.demo import DemoConnector
from bot.polling import mark_replyable
from bot.services.context import Services
from bot.services.ingest import ingest_batch

log = logging.getLogger(__name__)


class DemoFeed:
    def __init__(self, connector: DemoConnector, services: Services,
                 wake: Callable[[], None]) -> None:
        self.connector = connector
        self.services = services
        self.wake = wake

    async def step(self, cursor: str | None) -> str | None:
        """Ingest whatever is due after `cursor`; returns the new cursor."""
        page = await self.connector.fetch(cursor)
        if page.mentions:
            mentions = [mark_replyable(self.connector, m) for m in page.mentions]
            await ingest_batch(self.services, mentions, source_name=self.connector.name,
                               cursor=(self.connector.name, page.cursor))
            self.wake()
        return page.cursor

    async def run(self, stop: asyncio.Event) -> None:
        async with self.services.db.transaction() as tx:
            row = await tx.get_cursor(self.connector.name)
        cursor = row.cursor if row is not None else None
        while not stop.is_set():
            try:
                cursor = await self.step(cursor)
            except Exception:
                log.exception("demo feed %s: ingest failed; trying again shortly",
                              self.connector.name)
                wait: float | None = 1.0
            else:
                wait = self.connector.seconds_to_next(cursor)
            if wait is None:
                log.info("demo feed %s: all %d mentions replayed", self.connector.name,
                         len(self.connector.mentions))
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
