"""`/mentions find`: an author's cases by exact handle, or cases whose text contains a phrase.

Handles are stored as the network writes them (`@ann`, `@ann@example.social`, `u/ann`), so the
lookup compares lowercased handles with and without those prefixes rather than a substring:
`@ann` must never list `@annabel`. Free text is a LIKE search whose `%` and `_` are escaped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from db.models import CaseRow, MentionRow
from db.store import CaseRecord, Tx

LIKE_ESCAPE = "\\"
HANDLE_PREFIXES = ("@", "u/")


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (with `ESCAPE '\\'`)."""
    return (text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
            .replace("_", LIKE_ESCAPE + "_"))


def normalize_handle(handle: str) -> str:
    """`@Ann@Example.Social` → `ann@example.social`; `u/ann` → `ann`."""
    text = handle.strip().lower()
    for prefix in HANDLE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _handle_clause(name: str) -> Any:
    """Exact (case-insensitive) handle; without an instance part, any instance's `name`."""
    stored = func.lower(CaseRow.author_handle)
    clause = stored.in_([name, *(prefix + name for prefix in HANDLE_PREFIXES)])
    if "@" not in name:
        on_any_instance = f"@{escape_like(name)}@%"
        clause = or_(clause, stored.like(on_any_instance, escape=LIKE_ESCAPE))
    return clause


async def cases_by_handle(tx: Tx, handle: str, limit: int = 20) -> list[CaseRecord]:
    """The author's cases on every network, newest first."""
    name = normalize_handle(handle)
    if not name:
        return []
    stmt = (
        select(CaseRow, MentionRow)
        .join(MentionRow, MentionRow.id == CaseRow.mention_id)
        .where(_handle_clause(name))
        .order_by(CaseRow.id.desc())
        .limit(limit)
    )
    return [CaseRecord(c, m) for c, m in await tx.session.execute(stmt)]


async def cases_by_text(tx: Tx, needle: str, limit: int = 20) -> list[CaseRecord]:
    """Cases whose text or author handle contains `needle` literally, newest first."""
    pattern = f"%{escape_like(needle.lower())}%"
    stmt = (
        select(CaseRow, MentionRow)
        .join(MentionRow, MentionRow.id == CaseRow.mention_id)
        .where(or_(func.lower(MentionRow.author_handle).like(pattern, escape=LIKE_ESCAPE),
                   func.lower(MentionRow.text).like(pattern, escape=LIKE_ESCAPE)))
        .order_by(CaseRow.id.desc())
        .limit(limit)
    )
    return [CaseRecord(c, m) for c, m in await tx.session.execute(stmt)]
