"""Grouped cases: taking one out of its group, and closing a group with its lead.

A group is a lead case with a card and member cases (`group_id` = the lead) without one. The
lead carries the SLA and the queue position; the members are received mentions that wait on
the lead. So when the lead closes, its open members close as `duplicate` in the same
transaction, and a member somebody wants to handle on its own is opened as its own card.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.lifecycle import Action, Actor, Outcome, State, apply, check_member
from bot.services.context import Services
from bot.services.effects import Effect
from db import grouped
from db.store import CaseRecord, Tx

OPENED = "open_from_group"
"""Audit action of a member taken out of its group to get its own card."""


class NotInGroup(ValueError):
    """The clicked case is not (or no longer) a member of that group; user-facing."""


def card_post_key(case_id: int) -> str:
    """The dedup key ingest gives a case's first card."""
    return f"card.post:{case_id}"


async def take_out_of_group(tx: Tx, record: CaseRecord, lead_id: int, actor: Actor,
                            now: datetime, **payload: Any) -> bool:
    """Clear the member's `group_id`, queue its own card and refresh the lead's card and
    thread list, with an audit event; False when it already left the group."""
    case = record.case
    assert case.id is not None
    if not await grouped.leave_group(tx, case.id, lead_id, now):
        return False
    await tx.audit(case_id=case.id, actor=actor.user_id, action=OPENED,
                   from_state=case.state, to_state=case.state, at=now,
                   payload={"role": actor.role, "group_id": lead_id, **payload})
    await tx.enqueue(Effect.CARD_POST, now=now, case_id=case.id,
                     dedup_key=card_post_key(case.id))
    await tx.enqueue(Effect.CARD_UPDATE, now=now, case_id=lead_id)
    await tx.enqueue(Effect.GROUP_UPDATE, now=now, case_id=lead_id)
    return True


async def open_grouped_case(services: Services, case_id: int, lead_id: int, actor: Actor
                            ) -> CaseRecord:
    """`Open` in a group's thread: the member gets its own claimable card."""
    check_member(actor)
    now = services.clock()
    async with services.db.transaction() as tx:
        record = await tx.get_case(case_id)
        if record is None or record.case.group_id != lead_id:
            raise NotInGroup(f"Case #{case_id} is not grouped with case #{lead_id} any more.")
        if record.case.state == State.CLOSED:
            raise NotInGroup(f"Case #{case_id} is already closed.")
        if not await take_out_of_group(tx, record, lead_id, actor, now):
            raise NotInGroup(f"Case #{case_id} was just opened by someone else.")
        updated = await tx.get_case(case_id)
    assert updated is not None
    return updated


async def close_duplicates(tx: Tx, lead: CaseRecord, actor: Actor, now: datetime) -> int:
    """Close the lead's open members as `duplicate` (the lead's close, same transaction)."""
    lead_id = lead.case.id
    if lead_id is None or lead.case.group_id is not None:
        return 0
    closed = 0
    for member in await grouped.open_members(tx, lead_id):
        to_state = apply(State(member.state), Action.CLOSE)
        if not await tx.compare_and_set(member.case_id, member.version, state=to_state,
                                        outcome=Outcome.DUPLICATE.value, closed_at=now,
                                        updated_at=now):
            continue
        await tx.audit(case_id=member.case_id, actor=actor.user_id, action=Action.CLOSE,
                       from_state=member.state, to_state=to_state, at=now,
                       payload={"role": actor.role, "outcome": Outcome.DUPLICATE.value,
                                "duplicate_of": lead_id, "auto": True})
        closed += 1
    if closed:
        await tx.enqueue(Effect.GROUP_UPDATE, now=now, case_id=lead_id)
    return closed
