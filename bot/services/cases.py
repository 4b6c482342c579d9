"""Case use cases: claim, release, close, reopen. Each is one transaction with its audit event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.lifecycle import (
    Action,
    Actor,
    IllegalTransition,
    Outcome,
    State,
    apply,
    check_may_act,
    check_member,
)
from bot.logs import case_context
from bot.services.context import Services
from bot.services.effects import Effect
from bot.services.groups import close_duplicates
from db.store import CaseRecord, Tx

log = logging.getLogger(__name__)

NOTE_LIMIT = 2000


class CaseNotFound(LookupError):
    def __init__(self, case_id: int) -> None:
        super().__init__(f"Case #{case_id} does not exist.")


class AlreadyClaimed(Exception):
    """Somebody else won the claim race; the message is user-facing."""

    def __init__(self, assignee: str | None, *, by_you: bool = False) -> None:
        self.assignee = assignee
        text = "You already claimed this case." if by_you else f"Already claimed by <@{assignee}>."
        super().__init__(text)


class ChangedMeanwhile(Exception):
    def __init__(self) -> None:
        super().__init__("Someone changed this case at the same moment; please try again.")


Guard = Callable[[CaseRecord], None]


async def transition(
    services: Services,
    case_id: int,
    actor: Actor,
    action: Action,
    *,
    values: Callable[[datetime], dict[str, Any]] | None = None,
    guard: Guard | None = None,
    payload: dict[str, Any] | None = None,
    after: Callable[[Tx, CaseRecord, datetime], Any] | None = None,
) -> CaseRecord:
    """Apply `action`: guards, compare-and-set, audit event and card update in one commit.
    Every line logged meanwhile names the case."""
    now = services.clock()
    with case_context(case_id):
        async with services.db.transaction() as tx:
            record = await tx.get_case(case_id)
            if record is None:
                raise CaseNotFound(case_id)
            case = record.case
            check_member(actor)
            from_state = State(case.state)
            to_state = apply(from_state, action)
            if guard is not None:
                guard(record)
            check_may_act(actor, action, case.assignee if from_state != State.NEW else None)
            changes = {"state": to_state, "updated_at": now, **(values(now) if values else {})}
            if not await tx.compare_and_set(case_id, case.version, **changes):
                raise ChangedMeanwhile
            await tx.audit(
                case_id=case_id,
                actor=actor.user_id,
                action=action,
                from_state=from_state,
                to_state=to_state,
                at=now,
                payload={"role": actor.role, **(payload or {})},
            )
            await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=case_id)
            updated = await tx.get_case(case_id)
            assert updated is not None
            if after is not None:
                await after(tx, updated, now)
        log.info("%s by %s (%s): case is now %s", action, actor.user_id, actor.role,
                 updated.case.state)
    return updated


async def claim_mention(services: Services, case_id: int, actor: Actor) -> CaseRecord:
    """Exactly one agent wins; the others learn who did."""
    try:
        return await transition(
            services,
            case_id,
            actor,
            Action.CLAIM,
            values=lambda now: {"assignee": actor.user_id, "claimed_at": now},
        )
    except (IllegalTransition, ChangedMeanwhile) as exc:
        async with services.db.transaction() as tx:
            record = await tx.get_case(case_id)
        if record is None or record.case.state == State.NEW:
            raise
        if record.case.state == State.CLAIMED or record.case.assignee:
            assignee = record.case.assignee
            raise AlreadyClaimed(assignee, by_you=assignee == actor.user_id) from exc
        raise


async def release_case(services: Services, case_id: int, actor: Actor) -> CaseRecord:
    return await transition(
        services, case_id, actor, Action.RELEASE, values=lambda _now: {"assignee": None}
    )


def parse_outcome(value: str | None) -> Outcome:
    try:
        return Outcome(value or "")
    except ValueError:
        choices = ", ".join(o.value for o in Outcome)
        raise ValueError(f"Choose an outcome: {choices}.") from None


async def end_pending_drafts(tx: Tx, case_id: int, now: datetime, status: str) -> None:
    """End the case's undecided drafts and update their approval requests, so no lead is
    left with buttons on a draft that can no longer be approved."""
    for draft_id in await tx.end_pending_drafts(case_id, status):
        await tx.enqueue(Effect.APPROVAL_UPDATE, now=now, case_id=case_id,
                         payload={"draft_id": draft_id})


async def close_case(
    services: Services, case_id: int, actor: Actor, outcome: Outcome, note: str | None = None
) -> CaseRecord:
    note = (note or "").strip()[:NOTE_LIMIT] or None
    return await transition(
        services,
        case_id,
        actor,
        Action.CLOSE,
        values=lambda now: {"outcome": outcome, "note": note, "closed_at": now},
        payload={"outcome": outcome, "note": note},
        after=lambda tx, lead, now: _after_close(tx, lead, actor, now),
    )


async def _after_close(tx: Tx, lead: CaseRecord, actor: Actor, now: datetime) -> None:
    """In the close's commit: a draft still waiting for a lead is withdrawn, and a group's
    lead closes its still-open members as duplicates."""
    await end_pending_drafts(tx, lead.case.id or 0, now, "withdrawn")
    await close_duplicates(tx, lead, actor, now)


async def reopen_case(services: Services, case_id: int, actor: Actor) -> CaseRecord:
    return await transition(
        services,
        case_id,
        actor,
        Action.REOPEN,
        values=lambda _now: {"outcome": None, "closed_at": None, "assignee": None},
    )


async def load_case(services: Services, case_id: int) -> CaseRecord:
    async with services.db.transaction() as tx:
        record = await tx.get_case(case_id)
    if record is None:
        raise CaseNotFound(case_id)
    return record
