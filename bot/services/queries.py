"""Read-only views for slash commands and the App Home."""

from __future__ import annotations

from bot.domain.lifecycle import OPEN_STATES
from bot.services.context import Services
from db import case_search
from db.store import CaseRecord


async def my_cases(services: Services, user: str) -> list[CaseRecord]:
    async with services.db.snapshot() as tx:
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
    async with services.db.snapshot() as tx:
        if is_handle_query(text):
            return await case_search.cases_by_handle(tx, text, FIND_LIMIT)
        return await case_search.cases_by_text(tx, text, FIND_LIMIT)
