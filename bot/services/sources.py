"""Source health: bookkeeping after each poll or webhook, alerts, and the queryable view.

Each source's `source_cursor` row carries its health. An unhealthy source posts ONE warning
to the admin channel, and one "recovered" notice once healthy again: the `alerted` flag is
flipped by compare-and-set in the transaction that enqueues the notice, so several processes
evaluating the same source still send each message once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.domain.source_health import SourceHealthStatus, SourceRecord, assess
from bot.services.effects import Effect
from bot.settings import SourceConfig
from bot.slack.text import escape_and_truncate
from db.models import SourceCursorRow
from db.store import Database, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollNote:
    """What the previous bookkeeping said, so callers log a recurring error only once."""

    failures: int
    previous_error: str | None


def _record(row: SourceCursorRow | None) -> SourceRecord | None:
    if row is None:
        return None
    return SourceRecord(
        failures=row.failures, permanent=row.permanent, last_error=row.last_error,
        last_error_at=row.last_error_at, last_success_at=row.last_success_at,
        last_mention_at=row.last_mention_at, alerted=row.alerted,
    )


async def _row(tx: Tx, name: str, now: datetime) -> SourceCursorRow:
    """The source's row, created (watching begins now) when missing, even under a race."""
    row = await tx.session.get(SourceCursorRow, name, populate_existing=True)
    if row is None:
        # Silence is counted from here until a first mention arrives.
        await tx.session.execute(
            tx._insert(SourceCursorRow)
            .values(source=name, updated_at=now, last_mention_at=now, failures=0,
                    alerted=False, permanent=False)
            .on_conflict_do_nothing(index_elements=["source"])
        )
        row = await tx.session.get(SourceCursorRow, name, populate_existing=True)
    assert row is not None
    return row


@dataclass(frozen=True, slots=True)
class OpenFailure:
    """A failure that a successful poll does not cure (a stream that keeps failing while
    polls work): the source stays as unhealthy as this says."""

    failures: int
    error: str
    permanent: bool = False


async def note_success(
    db: Database, source: SourceConfig, now: datetime, *, mentions: int, admin_channel: str,
    still_failing: OpenFailure | None = None,
) -> None:
    """A poll (or webhook) went through; `mentions` new ones arrived."""
    async with db.transaction() as tx:
        row = await _row(tx, source.name, now)
        row.last_success_at = now
        row.failures = still_failing.failures if still_failing else 0
        row.permanent = still_failing.permanent if still_failing else False
        if still_failing:
            row.last_error = still_failing.error[:1000]
        if mentions or row.last_mention_at is None:
            row.last_mention_at = now
        await tx.session.flush()
        await _alert_if_changed(tx, source, row, now, admin_channel)


async def note_failure(
    db: Database, source: SourceConfig, now: datetime, error: str, *, permanent: bool,
    admin_channel: str, count: int | None = None,
) -> PollNote:
    """A poll failed; the cursor was not advanced. Returns the failure count and prior error.

    `count`, when the caller keeps its own tally of failures in a row (a stream), is stored
    when larger than the row's, so successful polls in between do not hide it."""
    async with db.transaction() as tx:
        row = await _row(tx, source.name, now)
        previous = row.last_error if row.failures else None
        row.failures = max(row.failures + 1, count or 0)
        row.permanent = permanent
        row.last_error = error[:1000]
        row.last_error_at = now
        await tx.session.flush()
        await _alert_if_changed(tx, source, row, now, admin_channel)
        return PollNote(failures=row.failures, previous_error=previous)


async def check_sources(
    db: Database, sources: Sequence[SourceConfig], now: datetime, *, admin_channel: str
) -> None:
    """Re-evaluate every source (silence grows with time, not with polls) and alert once."""
    for source in sources:
        if not source.enabled:
            continue
        async with db.transaction() as tx:
            row = await tx.session.get(SourceCursorRow, source.name, populate_existing=True)
            if row is None and source.silence_alert_minutes is None:
                continue
            row = row or await _row(tx, source.name, now)
            await _alert_if_changed(tx, source, row, now, admin_channel)


async def _alert_if_changed(
    tx: Tx, source: SourceConfig, row: SourceCursorRow, now: datetime, channel: str
) -> None:
    health = assess(source.name, source.kind.value, _record(row), now,
                    enabled=source.enabled, silence_alert_minutes=source.silence_alert_minutes)
    if health.healthy == (not row.alerted):
        return
    flipped = await tx.session.execute(
        update(SourceCursorRow)
        .where(SourceCursorRow.source == source.name,
               SourceCursorRow.alerted == health.healthy)
        .values(alerted=not health.healthy)
        .execution_options(synchronize_session=False)
    )
    if not flipped.rowcount:  # type: ignore[attr-defined]
        return  # another process sent this message already
    if not channel:
        log.warning("source %s is %s but no admin or alerts channel is configured",
                    source.name, "unhealthy" if not health.healthy else "healthy again")
        return
    await tx.enqueue(Effect.NOTICE, now=now,
                     payload={"channel": channel, "text": alert_text(health), "in_thread": False})


def alert_text(health: SourceHealthStatus) -> str:
    """The admin channel's message for a source that went unhealthy or recovered."""
    name = escape_and_truncate(health.name, 64)
    if health.healthy:
        return f":white_check_mark: Source *{name}* ({health.kind}) has recovered."
    reason = escape_and_truncate(health.reason, 600)
    return f":warning: Source *{name}* ({health.kind}) is {health.condition.value}: {reason}"


async def source_health(
    db: Database, sources: Sequence[SourceConfig], now: datetime
) -> list[SourceHealthStatus]:
    """Health of every configured source, in configuration order (for `/mentions status` and
    `/readyz`). Read-only."""
    names = [s.name for s in sources]
    async with db.transaction() as tx:
        rows = {
            row.source: row
            for row in (await tx.session.execute(
                select(SourceCursorRow).where(SourceCursorRow.source.in_(names))
                .execution_options(populate_existing=True)
            )).scalars()
        } if names else {}
    return [
        assess(s.name, s.kind.value, _record(rows.get(s.name)), now, enabled=s.enabled,
               silence_alert_minutes=s.silence_alert_minutes)
        for s in sources
    ]
