"""Read-only views for slash commands and the App Home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.lifecycle import OPEN_STATES, State
from bot.services.context import Services
from db import case_search
from db.store import CaseRecord


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source: str
    last_success_at: datetime | None
    last_error: str | None
    failures: int


@dataclass(frozen=True, slots=True)
class Status:
    by_state: dict[str, int]
    oldest_unclaimed_id: int | None
    oldest_unclaimed_since: datetime | None
    load: dict[str, int]
    outbox: dict[str, int]
    sources: list[SourceHealth]
    now: datetime


async def team_status(services: Services) -> Status:
    async with services.db.transaction() as tx:
        by_state = await tx.count_by_state()
        oldest = await tx.oldest_in_state(State.NEW)
        load = await tx.load_by_assignee([s.value for s in OPEN_STATES])
        outbox = await tx.outbox_counts()
        cursors = await tx.cursors()
    return Status(
        by_state=by_state,
        oldest_unclaimed_id=oldest.id if oldest else None,
        oldest_unclaimed_since=oldest.published_at if oldest else None,
        load=load,
        outbox=outbox,
        sources=[SourceHealth(c.source, c.last_success_at, c.last_error, c.failures)
                 for c in cursors],
        now=services.clock(),
    )


async def my_cases(services: Services, user: str) -> list[CaseRecord]:
    async with services.db.transaction() as tx:
        return await tx.cases_of(user, [s.value for s in OPEN_STATES])


FIND_LIMIT = 20


def is_handle_query(needle: str) -> bool:
    """`@ann`, `@ann@example.social`, `ann@example.social`, `u/ann`: one word naming an
    author (the leading `@` is optional when the instance part is given)."""
    text = needle.strip()
    return len(text.split()) == 1 and (text.startswith(("@", "u/")) or "@" in text[1:])


async def find_cases(services: Services, needle: str) -> list[CaseRecord]:
    """`@handle`: that author's cases, matched exactly; anything else: a literal phrase."""
    text = needle.strip()
    async with services.db.transaction() as tx:
        if is_handle_query(text):
            return await case_search.cases_by_handle(tx, text, FIND_LIMIT)
        return await case_search.cases_by_text(tx, text, FIND_LIMIT)
