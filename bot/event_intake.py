"""Slack events are persisted before they are acknowledged, and written in batches.

Bolt acknowledges an event before its listener runs, so a crash in between would lose what
the listener was to do. Here an event's id (a retry of it is then a no-op) and the effect it
asks for (an outbox row) commit before the request reaches Bolt; the listener has nothing
left to do.

Acknowledging must wait for that commit, and a commit costs far more than the rows in it.
Events that arrive while one batch is being written queue up and go in the next: one
transaction and two statements per batch (every id in one `INSERT … RETURNING`, every
effect in another), however many events are in flight, and a lone event still waits for
just one small transaction. On a SQLite file that transaction runs in one hop to a thread
(db/sqlite_writer.py). A batch that fails is written again one event at a time, so a
bad event fails alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bot.home_delivery import open_row
from bot.services.context import Clock
from db.models import OutboxRow
from db.store import Database, deliveries_insert, outbox_insert

log = logging.getLogger(__name__)

MAX_BATCH = 500


def envelope_of(body: str) -> dict[str, Any] | None:
    """The Events API envelope (`type: event_callback`) of a JSON request body, if it is one."""
    with suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict) and data.get("type") == "event_callback":
            return data
    return None


def effects(event: Any, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows an event asks for. `app_home_opened` is the one event subscribed."""
    if (isinstance(event, dict) and event.get("type") == "app_home_opened"
            and event.get("tab", "home") == "home"):
        row = open_row(str(event.get("user") or ""), now)
        return [row] if row else []
    return []


@dataclass(slots=True)
class _Pending:
    key: str
    rows: list[dict[str, Any]]
    answer: asyncio.Future[bool] = field(repr=False)


class EventIntake:
    def __init__(self, db: Database, clock: Clock, wake: Callable[[], None],
                 max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.clock = clock
        self.wake = wake
        self.max_batch = max_batch
        self.commits = 0
        """Transactions committed (tests and benchmarks read how well events were batched)."""
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def first_delivery(self, envelope: dict[str, Any]) -> bool:
        """Record an event and its effect; False when its `event_id` was seen before (a
        retry). Envelopes without an id pass unrecorded (Slack always sends one)."""
        event_id = str(envelope.get("event_id") or "")
        if not event_id:
            return True
        pending = _Pending(f"event:{event_id}", effects(envelope.get("event"), self.clock()),
                           asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="event-intake")
        # Shielded: a caller that hangs up does not cancel the batch the others wait for.
        return await asyncio.shield(pending.answer)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                await self._write(batch)
            except Exception as exc:
                log.warning("writing %d events together failed (%s); one at a time",
                            len(batch), exc.__class__.__name__)
                for pending in batch:
                    try:
                        await self._write([pending])
                    except Exception as one:
                        _settle(pending.answer, error=one)

    async def _write(self, batch: list[_Pending]) -> None:
        now = self.clock()
        dialect = self.db.dialect
        keys = [{"key": key, "received_at": now} for key in dict.fromkeys(p.key for p in batch)]

        def write(conn: Connection) -> tuple[dict[str, _Pending], int]:
            """The batch's ids in one statement, the effects of the new ones in another;
            returns each new id's delivery and how many effects were queued (not already
            there)."""
            new = {str(key) for key in conn.execute(deliveries_insert(dialect), keys).scalars()}
            first: dict[str, _Pending] = {}
            for pending in batch:  # an id twice in one batch: the first is the delivery
                if pending.key in new:
                    first.setdefault(pending.key, pending)
            rows = [row for p in first.values() for row in p.rows]
            if not rows:
                return first, 0
            added = conn.execute(outbox_insert(dialect).returning(OutboxRow.id), rows).all()
            return first, len(added)

        writer = self.db.sqlite_writer()
        if writer is not None:
            async with self.db.write_gate():
                first, queued = await writer.run(write)
        else:
            first, queued = await self.db.retrying(
                lambda tx: tx.session.run_sync(lambda session: write(session.connection())))
        self.commits += 1
        for pending in batch:
            _settle(pending.answer, value=first.get(pending.key) is pending)
        if queued:
            self.wake()

    async def close(self) -> None:
        """Let the batch being written finish: its requests are waiting for it."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


def _settle(answer: asyncio.Future[bool], *, value: bool = False,
            error: BaseException | None = None) -> None:
    if answer.done():
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(value)
