"""Reply use cases: save a draft, approve or reject it, record what the network answered.

Approval enqueues the reply in the same transaction; the dispatcher posts it with an
idempotency key derived from the draft, so one approved draft is published at most once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.length import LengthCheck
from bot.domain.lifecycle import (
    SYSTEM,
    Action,
    Actor,
    NotAllowed,
    State,
    authorize,
    check_may_decide,
)
from bot.services.cases import end_pending_drafts, transition
from bot.services.context import Services
from bot.services.effects import Effect
from bot.slack.text import escape_mrkdwn
from db.models import DraftRow
from db.store import CaseRecord, Tx

REASON_LIMIT = 1000


class DraftNotCurrent(NotAllowed):
    """Approving or rejecting a draft that was decided, superseded or replaced meanwhile."""

    def __init__(self) -> None:
        super().__init__("That draft is no longer the current one; nothing was changed.")


class TooLong(ValueError):
    """The reply does not fit the network; the message is the length detail."""


@dataclass(frozen=True, slots=True)
class DraftInput:
    text: str
    template: str | None
    values: dict[str, Any]
    preapproved: bool
    edited: bool
    length: LengthCheck


def reply_key(draft_id: int) -> str:
    """The idempotency key of the reply for one approved draft: stable across retries."""
    return f"mentiondesk-reply-{draft_id}"


async def save_draft(
    services: Services, case_id: int, actor: Actor, draft: DraftInput
) -> tuple[CaseRecord, DraftRow]:
    """Keep the draft and ask a lead, or, when allowed, approve an unedited pre-approved one."""
    if not draft.length.ok:
        raise TooLong(draft.length.detail)
    auto = (
        services.allow_preapproved_without_approval and draft.preapproved and not draft.edited
    )
    saved: list[DraftRow] = []

    async def after(tx: Tx, record: CaseRecord, now: datetime) -> None:
        await end_pending_drafts(tx, case_id, now, "superseded")
        row = await tx.add_draft(DraftRow(
            case_id=case_id, author=actor.user_id, template=draft.template,
            values=draft.values, text=draft.text, preapproved=draft.preapproved,
            edited=draft.edited, status="approved" if auto else "pending",
            decided_by=SYSTEM.user_id if auto else None, decided_at=now if auto else None,
            created_at=now,
        ))
        assert row.id is not None
        saved.append(row)
        if auto:
            await tx.enqueue(Effect.REPLY_POST, now=now, case_id=case_id,
                             payload={"draft_id": row.id}, dedup_key=f"reply:{row.id}")
        else:
            await tx.enqueue(Effect.APPROVAL_POST, now=now, case_id=case_id,
                             payload={"draft_id": row.id}, dedup_key=f"approval:{row.id}")

    record = await transition(
        services, case_id, actor, Action.AUTO_APPROVE if auto else Action.SUBMIT_DRAFT,
        values=lambda _now: {"reply_error": None},
        payload={"template": draft.template, "edited": draft.edited, "auto_approved": auto},
        after=after,
    )
    return record, saved[0]


async def _current_draft(services: Services, draft_id: int, case_id: int) -> DraftRow:
    async with services.db.transaction() as tx:
        draft = await tx.get_draft(draft_id)
    if draft is None or draft.case_id != case_id or draft.status != "pending":
        raise DraftNotCurrent
    return draft


async def approve_draft(
    services: Services, case_id: int, draft_id: int, actor: Actor,
    edited_text: str | None = None, length: LengthCheck | None = None,
) -> CaseRecord:
    """Approve the current draft, as written or with the lead's edit (`edited_text`, measured
    by the caller for the network as `length`). An edit keeps the agent's text on the row."""
    draft = await _current_draft(services, draft_id, case_id)
    check_may_decide(actor, draft.author)
    if edited_text is not None:
        edited_text = edited_text.strip()
        if length is None:
            raise ValueError("An edited reply must be measured before it is approved.")
        if not length.ok:
            raise TooLong(length.detail)
    edited = edited_text is not None and edited_text != draft.text.strip()

    async def after(tx: Tx, _record: CaseRecord, now: datetime) -> None:
        values: dict[str, Any] = {"decided_by": actor.user_id, "decided_at": now}
        if edited:
            values.update(text=edited_text, original_text=draft.text, edited=True)
        if not await tx.decide_draft(draft_id, "approved", **values):
            raise DraftNotCurrent
        await tx.enqueue(Effect.REPLY_POST, now=now, case_id=case_id,
                         payload={"draft_id": draft_id}, dedup_key=f"reply:{draft_id}")
        await tx.enqueue(Effect.APPROVAL_UPDATE, now=now, case_id=case_id,
                         payload={"draft_id": draft_id})

    return await transition(
        services, case_id, actor, Action.APPROVE,
        payload={"draft_id": draft_id, "edited_by_lead": edited,
                 **({"original_text": draft.text, "text": edited_text} if edited else {})},
        after=after,
    )


async def reject_draft(
    services: Services, case_id: int, draft_id: int, actor: Actor, reason: str
) -> CaseRecord:
    reason = reason.strip()[:REASON_LIMIT]
    if not reason:
        raise ValueError("Say why, so the agent can fix the draft.")
    draft = await _current_draft(services, draft_id, case_id)
    check_may_decide(actor, draft.author)

    async def after(tx: Tx, record: CaseRecord, now: datetime) -> None:
        if not await tx.decide_draft(draft_id, "rejected", decided_by=actor.user_id,
                                     decided_at=now, reason=reason):
            raise DraftNotCurrent
        await tx.enqueue(Effect.APPROVAL_UPDATE, now=now, case_id=case_id,
                         payload={"draft_id": draft_id})
        await tx.enqueue(Effect.NOTICE, now=now, case_id=case_id, payload={
            "text": f"<@{draft.author}> your draft was rejected by <@{actor.user_id}>: "
                    f"{escape_mrkdwn(reason)}\nDraft a new reply from the card."})

    return await transition(services, case_id, actor, Action.REJECT,
                            payload={"draft_id": draft_id, "reason": reason}, after=after)


async def record_reply_posted(
    services: Services, case_id: int, draft_id: int, external_id: str, url: str
) -> None:
    """The network accepted the reply: the case becomes `replied` and remembers where."""

    def values(now: datetime) -> dict[str, Any]:
        return {"reply_ref": external_id, "reply_url": url or None, "reply_error": None}

    async def after(tx: Tx, record: CaseRecord, now: datetime) -> None:
        if record.case.first_reply_at is None:
            await tx.set_case_fields(case_id, first_reply_at=now)

    await transition(services, case_id, SYSTEM, Action.MARK_REPLIED, values=values,
                     payload={"draft_id": draft_id, "reply_id": external_id, "url": url},
                     after=after)


async def record_reply_failed(services: Services, case_id: int, reason: str) -> None:
    now = services.clock()
    async with services.db.transaction() as tx:
        await tx.set_case_fields(case_id, reply_error=reason[:500])
        await tx.audit(case_id=case_id, actor=SYSTEM.user_id, action="reply_failed", at=now,
                       payload={"reason": reason[:500]})
        await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case_id)


async def retry_reply(services: Services, case_id: int, actor: Actor) -> None:
    """Post the approved reply again after a permanent failure was fixed (a person decided)."""
    now = services.clock()
    async with services.db.transaction() as tx:
        record = await tx.get_case(case_id)
        if record is None or record.case.state != State.APPROVED or not record.case.reply_error:
            raise NotAllowed("There is no failed reply to retry on this case.")
        authorize(actor, "retry_reply", assignee=record.case.assignee)
        draft = await tx.latest_draft(case_id)
        if draft is None or draft.status != "approved" or draft.id is None:
            raise NotAllowed("There is no approved reply to retry on this case.")
        await tx.set_case_fields(case_id, reply_error=None)
        await tx.audit(case_id=case_id, actor=actor.user_id, action="retry_reply", at=now,
                       payload={"draft_id": draft.id})
        await tx.enqueue(Effect.REPLY_POST, now=now, case_id=case_id,
                         payload={"draft_id": draft.id},
                         dedup_key=f"reply:{draft.id}:retry:{uuid.uuid4().hex}")
        await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case_id)
