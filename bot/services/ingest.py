"""Ingest: a batch of mentions becomes rows, cases, audit events and card posts in one commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.lifecycle import SYSTEM, Action, State, apply
from bot.domain.mention import Mention
from bot.services.context import Services
from bot.services.effects import Effect
from db.models import CaseRow, MentionRow
from db.store import Tx

Router = Callable[[MentionRow], str | None]


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: list[int]
    duplicates: int
    joined: list[int]


async def ingest_batch(
    services: Services,
    mentions: Sequence[Mention],
    *,
    source_name: str,
    cursor: tuple[str, str | None] | None = None,
    route: Router | None = None,
) -> IngestResult:
    """Persist mentions first; everything else (cards, triage effects) follows from the rows.

    A (source, external_id) seen before is skipped. A mention answering an earlier mention of
    the same author joins that case (reopening it when closed) instead of opening a new one.
    `cursor`, when given, is saved in the same transaction so a crash never skips or repeats.
    """
    now = services.clock()
    async with services.db.transaction() as tx:
        rows = await tx.insert_mentions(mentions, source_name, now)
        created: list[int] = []
        joined: list[int] = []
        new_cases: list[tuple[CaseRow, MentionRow]] = []
        for row in rows:
            existing = None
            if row.in_reply_to:
                existing = await tx.find_open_case_for_author_thread(
                    row.source, row.author_handle, [row.in_reply_to]
                )
            if existing is not None and existing.id is not None:
                await _join(tx, existing, row, now)
                joined.append(existing.id)
                continue
            channel = (route(row) if route else None) or services.default_channel
            case = CaseRow(
                mention_id=row.id or 0,
                source=row.source,
                source_name=source_name,
                author_handle=row.author_handle,
                state=State.NEW,
                channel=channel,
                published_at=row.published_at,
                created_at=now,
                updated_at=now,
            )
            new_cases.append((case, row))
        await tx.insert_cases([c for c, _ in new_cases])
        for case, row in new_cases:
            assert case.id is not None
            created.append(case.id)
            await tx.audit(
                case_id=case.id,
                actor=SYSTEM.user_id,
                action="ingest",
                to_state=State.NEW,
                at=now,
                payload={"source": row.source, "external_id": row.external_id},
            )
            await tx.enqueue(
                Effect.CARD_POST, now=now, case_id=case.id, dedup_key=f"card.post:{case.id}"
            )
        if cursor is not None:
            await tx.save_cursor(cursor[0], cursor[1], now)
    return IngestResult(created=created, duplicates=len(mentions) - len(rows), joined=joined)


async def _join(tx: Tx, case: CaseRow, row: MentionRow, now: datetime) -> None:
    """Record a follow-up on an existing case; a closed case reopens."""
    assert case.id is not None
    payload = {"mention_id": row.id, "external_id": row.external_id}
    if case.state == State.CLOSED:
        to_state = apply(State.CLOSED, Action.REOPEN)
        if await tx.compare_and_set(
            case.id, case.version, state=to_state, outcome=None, closed_at=None, updated_at=now
        ):
            await tx.audit(case_id=case.id, actor=SYSTEM.user_id, action=Action.REOPEN,
                           from_state=State.CLOSED, to_state=to_state, at=now, payload=payload)
    else:
        await tx.audit(case_id=case.id, actor=SYSTEM.user_id, action="follow_up",
                       from_state=case.state, to_state=case.state, at=now, payload=payload)
    await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case.id)
