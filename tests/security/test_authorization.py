"""The authorization matrix, through the real stack: who may do what, decided on the server.

Each actor (the claimer, another agent, a lead, a workspace member outside the care team, a
request from another workspace, an unknown user id) tries every operation on a case in the
state where it applies. Allowed cells must take effect; refused cells must change nothing
except one `refused` audit event. The expected matrix is written out here, independently of
`POLICY`, and the table must agree with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.lifecycle import POLICY, SYSTEM, Action, Actor, NotAllowed, Role, authorize
from bot.services.cases import reopen_case
from bot.slack.ids import (
    ACTION_APPROVE,
    ACTION_CLAIM,
    ACTION_CLOSE,
    ACTION_DRAFT,
    ACTION_DRAFT_INPUT,
    ACTION_REJECT,
    ACTION_RELEASE,
    ACTION_RETRY,
    ACTION_TEMPLATE_PICK,
)
from db.models import AuditEventRow
from tests.scenarios.reply_sink import ReplySink
from tests.scenarios.reply_steps import (
    approval_requests,
    claim,
    forum_mention,
    ingest,
)
from tests.scenarios.test_claim_flow import button, case_row
from tests.security.support import (
    Tally,
    forged_click_body,
    forged_command_body,
    post_slack,
    send_signed,
    slack_headers,
    snapshot,
)
from tests.stack import ANN, APPROVALS, BOB, LEAD, MENTIONS, Stack, start_stack

OUTSIDER = "U0OUTSIDE"
GHOST = "U0GHOST9"
OTHER_TEAM = "T0ELSEWHERE"

ACTORS = ["holder", "agent", "lead", "non-member", "other-team", "unknown"]
OPERATIONS = ["claim", "release", "draft", "approve", "reject", "retry", "close", "reopen",
              "status", "report", "export"]
Y, N = True, False
# The matrix as the product promises it (README, SECURITY.md). Holder = the agent who claimed.
EXPECTED: dict[str, dict[str, bool]] = {
    "claim":   dict(zip(ACTORS, [Y, Y, Y, N, N, N], strict=True)),
    "release": dict(zip(ACTORS, [Y, N, Y, N, N, N], strict=True)),
    "draft":   dict(zip(ACTORS, [Y, N, Y, N, N, N], strict=True)),
    "approve": dict(zip(ACTORS, [N, N, Y, N, N, N], strict=True)),  # never one's own draft
    "reject":  dict(zip(ACTORS, [N, N, Y, N, N, N], strict=True)),
    "retry":   dict(zip(ACTORS, [Y, N, Y, N, N, N], strict=True)),
    "close":   dict(zip(ACTORS, [Y, N, Y, N, N, N], strict=True)),
    "reopen":  dict(zip(ACTORS, [N, N, N, N, N, N], strict=True)),  # only when the customer writes
    "status":  dict(zip(ACTORS, [Y, Y, Y, N, N, N], strict=True)),
    "report":  dict(zip(ACTORS, [N, N, Y, N, N, N], strict=True)),
    "export":  dict(zip(ACTORS, [N, N, Y, N, N, N], strict=True)),
}
POLICY_KEY = {"draft": Action.SUBMIT_DRAFT, "retry": "retry_reply"}
# Which user id and workspace each actor acts as.
IDENTITY = {"holder": (ANN, None), "agent": (BOB, None), "lead": (LEAD, None),
            "non-member": (OUTSIDER, None), "other-team": (BOB, OTHER_TEAM),
            "unknown": (GHOST, OTHER_TEAM)}


def _role(actor: str) -> Actor:
    user = IDENTITY[actor][0]
    role = {"holder": Role.AGENT, "agent": Role.AGENT, "lead": Role.LEAD}.get(actor, Role.NONE)
    return Actor(user, role)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_policy_table_agrees_with_the_promised_matrix(operation: str) -> None:
    key = POLICY_KEY.get(operation, operation)
    assert key in POLICY, f"{operation} is missing from the policy table"
    for actor in ACTORS:
        kwargs: dict[str, Any] = {"assignee": ANN}
        if operation in ("approve", "reject"):
            kwargs["drafter"] = ANN
        try:
            authorize(_role(actor), key, **kwargs)
            allowed = True
        except NotAllowed:
            allowed = False
        assert allowed == EXPECTED[operation][actor], (operation, actor)


def test_unknown_operations_are_refused_and_reopen_is_for_the_system_only() -> None:
    with pytest.raises(NotAllowed):
        authorize(Actor(LEAD, Role.LEAD), "delete_everything")
    authorize(SYSTEM, Action.REOPEN)


@asynccontextmanager
async def team_stack(database_url: str, tmp_path: Path, sink: ReplySink,
                     **slack: Any) -> AsyncIterator[Stack]:
    async with start_stack(database_url, tmp_path, reply_url=sink.url, agents=[ANN, BOB],
                           **slack) as stack:
        stack.emulator.add_user(OUTSIDER, "olga", real_name="Olga Outside")
        yield stack


@dataclass
class World:
    """Cases prepared for every operation: case ids by operation."""

    cases: dict[str, int]


SETUP_ORDER = ["claim", "release", "draft", "close", "approve", "reject", "retry", "reopen"]


async def prepare(stack: Stack, sink: ReplySink) -> World:
    """One case per operation, each in the state where the operation applies."""
    topics = ["parcel lost", "refund late", "app crashes", "wrong size", "billing twice",
              "login broken", "rude driver", "coupon invalid"]
    bodies = [forum_mention(str(100 + i), author={"handle": f"@cust{i}", "name": f"C{i}"},
                            text=f"Case {i}: {topic} #{i * 7919}")
              for i, topic in enumerate(topics[:len(SETUP_ORDER)])]
    await ingest(stack, *bodies)
    cases = {op: i + 1 for i, op in enumerate(SETUP_ORDER)}
    for op in ("release", "draft", "close", "approve", "reject", "retry"):
        card = card_for(stack, cases[op])
        await stack.emulator.click(ANN, MENTIONS, card.ts, ACTION_CLAIM,
                                   button(card, "Claim")["value"])
        await stack.drain()
    for op in ("approve", "reject", "retry"):
        response = await draft_and_submit(stack, cases[op], ANN)
        assert response.status == 200, response.text
    await stack.drain()
    sink.answer_status = 422
    request = approval_for(stack, cases["retry"])
    await stack.emulator.click(LEAD, APPROVALS, request.ts, ACTION_APPROVE,
                               button(request, "Approve")["value"])
    await stack.drain()
    sink.answer_status = 200
    assert (await case_row(stack, cases["retry"])).reply_error
    # reopen: a closed case (its only way back is the customer writing again)
    card = card_for(stack, cases["reopen"])
    await stack.emulator.click(LEAD, MENTIONS, card.ts, ACTION_CLOSE,
                               button(card, "Close")["value"])
    view = stack.emulator.open_views(LEAD)[-1]
    await stack.emulator.submit_view(LEAD, view.id, {"outcome": {"value": "spam"}})
    await stack.drain()
    assert (await case_row(stack, cases["reopen"])).state == "closed"
    return World(cases)


def card_for(stack: Stack, case_id: int) -> Any:
    """The card of `case_id`, found by what its buttons carry (cards post in priority order)."""
    for message in stack.cards():
        for block in message.blocks or []:
            for element in block.get("elements", []):
                if element.get("value") == f"case:{case_id}":
                    return message
    raise AssertionError(f"no card for case {case_id}")


async def draft_and_submit(stack: Stack, case_id: int, agent: str) -> Any:
    """Draft reply → pick a template → fill its field → submit, on the card of `case_id`."""
    card = card_for(stack, case_id)
    await stack.emulator.click(agent, MENTIONS, card.ts, ACTION_DRAFT,
                               button(card, "Draft reply")["value"])
    view = stack.emulator.open_views(agent)[-1]
    updates = len(stack.emulator.calls_to("views.update"))
    await stack.emulator.select_in_view(agent, view.id, ACTION_TEMPLATE_PICK, "apology_outage")
    await stack.emulator.wait_for_call("views.update", updates + 1)
    view = stack.emulator.open_views(agent)[-1]
    return await stack.emulator.submit_view(agent, view.id,
                                            {"var__eta": {ACTION_DRAFT_INPUT: "by 6 pm"}})


def approval_for(stack: Stack, case_id: int) -> Any:
    for message in approval_requests(stack):
        for block in message.blocks or []:
            for element in block.get("elements", []):
                if str(element.get("value", "")).startswith(f"case:{case_id}:draft:"):
                    return message
    raise AssertionError(f"no approval request for case {case_id}")


async def press(stack: Stack, actor: str, channel: str, message: Any, action_id: str,
                label: str, value: str | None = None) -> None:
    """A click by `actor`: the emulator's own for workspace users, a signed forged body for
    the other workspace and the unknown user."""
    user, team = IDENTITY[actor]
    value = value if value is not None else button(message, label)["value"]
    if team is None:
        await stack.emulator.click(user, channel, message.ts, action_id, value)
        return
    body = forged_click_body(stack, user_id=user, team_id=team, channel=channel,
                             message_ts=message.ts, action_id=action_id, value=value)
    status, _ = await send_signed(stack, body)
    assert status == 200


async def command(stack: Stack, actor: str, text: str) -> str:
    user, team = IDENTITY[actor]
    if team is None:
        await stack.emulator.send_command(user, text)
        return stack.emulator.ephemerals(user=user)[-1].text
    status, answer = await send_signed(stack, forged_command_body(stack, user_id=user,
                                                                  team_id=team, text=text))
    assert status == 200
    return str(json.loads(answer)["text"])


async def refusals(stack: Stack) -> list[AuditEventRow]:
    async with stack.components.db.transaction() as tx:
        rows = await tx.session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "refused")
            .order_by(AuditEventRow.id))
        return list(rows.scalars())


def _without_audit(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if k != "audit_event"}


EFFECT_CALLS = ("chat.postMessage", "chat.update", "views.open", "views.publish")


def effect_calls(stack: Stack) -> int:
    return sum(len(stack.emulator.calls_to(m)) for m in EFFECT_CALLS)


async def attempt(stack: Stack, world: World, actor: str, operation: str) -> bool:
    """Try `operation` as `actor`; True when it took effect."""
    user = IDENTITY[actor][0]
    case_id = world.cases.get(operation)
    if operation == "claim":
        await press(stack, actor, MENTIONS, card_for(stack, case_id or 0), ACTION_CLAIM, "Claim")
        row = await case_row(stack, case_id or 0)
        return row.state == "claimed" and row.assignee == user
    if operation == "release":
        await press(stack, actor, MENTIONS, card_for(stack, case_id or 0), ACTION_RELEASE,
                    "Release")
        return (await case_row(stack, case_id or 0)).state == "new"
    if operation == "draft":
        before = len(stack.emulator.calls_to("views.open"))
        await press(stack, actor, MENTIONS, card_for(stack, case_id or 0), ACTION_DRAFT,
                    "Draft reply")
        return len(stack.emulator.calls_to("views.open")) > before
    if operation == "close":
        opened = len(stack.emulator.calls_to("views.open"))
        await press(stack, actor, MENTIONS, card_for(stack, case_id or 0), ACTION_CLOSE, "Close")
        if not await submit_new_view(stack, user, opened, "outcome", "resolved"):
            return False
        return (await case_row(stack, case_id or 0)).state == "closed"
    if operation == "approve":
        request = approval_for(stack, case_id or 0)
        await press(stack, actor, APPROVALS, request, ACTION_APPROVE, "Approve")
        return (await case_row(stack, case_id or 0)).state in ("approved", "replied")
    if operation == "reject":
        request = approval_for(stack, case_id or 0)
        opened = len(stack.emulator.calls_to("views.open"))
        await press(stack, actor, APPROVALS, request, ACTION_REJECT, "Reject")
        if not await submit_new_view(stack, user, opened, "reason", "Too vague"):
            return False
        return (await case_row(stack, case_id or 0)).state == "claimed"
    if operation == "retry":
        await press(stack, actor, MENTIONS, card_for(stack, case_id or 0), ACTION_RETRY, "Retry")
        return not (await case_row(stack, case_id or 0)).reply_error
    if operation == "reopen":
        # No person can ask for it: not on any card, not a command; a forged action id is
        # an unhandled request.
        card = next(c for c in stack.cards() if any(
            e.get("action_id") for b in c.blocks or [] for e in b.get("elements", [])))
        user_, team = IDENTITY[actor]
        body = forged_click_body(stack, user_id=user_, team_id=team or "T0MENTDSK",
                                 channel=MENTIONS, message_ts=card.ts,
                                 action_id=_any_action(card), value=f"case:{case_id}")
        body = body.replace(_any_action(card).encode(), b"mention.reopen")
        await send_signed(stack, body)
        return (await case_row(stack, case_id or 0)).state != "closed"
    text = await command(stack, actor, operation)
    return not text.startswith(("Only ", "I don't know"))


async def submit_new_view(stack: Stack, user: str, opened_before: int, block_id: str,
                          value: str) -> bool:
    """Submit the modal the last click opened, if it opened one."""
    if len(stack.emulator.calls_to("views.open")) == opened_before:
        return False
    view = stack.emulator.open_views(user)[-1]
    block = next(b for b in view.blocks if b.get("block_id") == block_id)
    response = await stack.emulator.submit_view(
        user, view.id, {block_id: {block["element"]["action_id"]: value}})
    assert response.status == 200
    return True


def _any_action(message: Any) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id"):
                return str(element["action_id"])
    raise AssertionError("no action on the message")


@pytest.mark.parametrize("actor", ACTORS)
async def test_authorization_matrix_through_the_stack(
    database_url: str, tmp_path: Path, sink: ReplySink, actor: str
) -> None:
    tally = Tally(f"authorization matrix, actor={actor}")
    async with team_stack(database_url, tmp_path, sink) as stack:
        world = await prepare(stack, sink)
        for operation in OPERATIONS:
            expected = EXPECTED[operation][actor]
            await stack.drain()
            before_rows = _without_audit(await snapshot(stack))
            before_refusals = len(await refusals(stack))
            before_calls = effect_calls(stack)
            took_effect = await attempt(stack, world, actor, operation)
            tally.add("tried")
            assert took_effect == expected, (actor, operation)
            if expected:
                tally.add("allowed")
                continue
            tally.add("refused")
            assert _without_audit(await snapshot(stack)) == before_rows, (actor, operation)
            assert effect_calls(stack) == before_calls, (actor, operation)
            if operation == "reopen":
                continue  # no listener exists to refuse it: nothing ran at all
            recorded = (await refusals(stack))[before_refusals:]
            assert len(recorded) == 1, (actor, operation, recorded)
            assert recorded[0].actor == IDENTITY[actor][0]
            tally.add("refusals_audited")
    tally.print()


async def test_forged_button_values_are_refused(database_url: str, tmp_path: Path,
                                                sink: ReplySink) -> None:
    async with team_stack(database_url, tmp_path, sink) as stack:
        world = await prepare(stack, sink)
        approve_case, reject_case = world.cases["approve"], world.cases["reject"]
        request = approval_for(stack, approve_case)
        own_value = button(request, "Approve")["value"]
        draft_id = own_value.rsplit(":", 1)[1]
        other_value = button(approval_for(stack, reject_case), "Approve")["value"]
        other_draft = other_value.rsplit(":", 1)[1]
        release_card = card_for(stack, world.cases["release"])
        forged = [
            # the lead approves case A with case B's draft id, and the reverse
            (LEAD, APPROVALS, request, ACTION_APPROVE, f"case:{approve_case}:draft:{other_draft}"),
            (LEAD, APPROVALS, request, ACTION_APPROVE, f"case:{reject_case}:draft:{draft_id}"),
            (LEAD, APPROVALS, request, ACTION_APPROVE, "case:999:draft:999"),
            (LEAD, APPROVALS, request, ACTION_APPROVE, f"case:{approve_case}"),
            (LEAD, APPROVALS, request, ACTION_APPROVE, "case:1 OR 1=1"),
            (LEAD, APPROVALS, request, ACTION_APPROVE, ""),
            # another agent releases Ann's case from a card that is not that case's
            (BOB, MENTIONS, card_for(stack, world.cases["claim"]), ACTION_CLAIM,
             f"case:{world.cases['release']}"),
            (BOB, MENTIONS, release_card, ACTION_RELEASE, f"case:{world.cases['draft']}"),
            (BOB, MENTIONS, release_card, ACTION_CLOSE, f"case:{world.cases['close']}"),
        ]
        before = _without_audit(await snapshot(stack))
        before_refusals = len(await refusals(stack))
        for user, channel, message, action, value in forged:
            await stack.emulator.click(user, channel, message.ts, action, value)
        assert _without_audit(await snapshot(stack)) == before
        assert len(await refusals(stack)) - before_refusals == len(forged)
        assert stack.emulator.open_views(BOB) == []
        Tally("forged button values", {"tried": len(forged), "refused": len(forged)}).print()


async def test_usergroup_lookup_failure_denies(database_url: str, tmp_path: Path,
                                              sink: ReplySink) -> None:
    lead2 = "U0LEAD2"
    async with team_stack(database_url, tmp_path, sink, lead_usergroup="S0LEADS",
                                  usergroup_cache_seconds=0) as stack:
        stack.emulator.add_user(lead2, "gail", real_name="Gail Lead")
        stack.emulator.add_usergroup("S0LEADS", [lead2])
        await ingest(stack, forum_mention())
        await claim(stack, 1, ANN)
        assert (await draft_and_submit(stack, 1, ANN)).status == 200
        await stack.drain()
        request = approval_for(stack, 1)
        value = button(request, "Approve")["value"]
        stack.emulator.fail("usergroups.users.list", status=500, retry_after=None, times=50,
                            error="internal_error")
        await stack.emulator.click(lead2, APPROVALS, request.ts, ACTION_APPROVE, value)
        assert (await case_row(stack, 1)).state == "awaiting_approval"
        assert "Only a lead" in stack.emulator.ephemerals(APPROVALS, lead2)[-1].text
        assert (await refusals(stack))[-1].actor == lead2
        stack.emulator.clear_faults()
        await stack.emulator.click(lead2, APPROVALS, request.ts, ACTION_APPROVE, value)
        assert (await case_row(stack, 1)).state == "approved"


async def test_replayed_approve_has_one_effect(database_url: str, tmp_path: Path,
                                              sink: ReplySink) -> None:
    async with team_stack(database_url, tmp_path, sink) as stack:
        await ingest(stack, forum_mention())
        await claim(stack, 1, ANN)
        assert (await draft_and_submit(stack, 1, ANN)).status == 200
        await stack.drain()
        request = approval_for(stack, 1)
        value = button(request, "Approve")["value"]
        # The very same signed bytes, replayed 60 times inside the 5-minute window ...
        body = forged_click_body(stack, user_id=LEAD, team_id="T0MENTDSK", channel=APPROVALS,
                                 message_ts=request.ts, action_id=ACTION_APPROVE, value=value)
        headers = slack_headers(body)
        for batch in range(6):
            statuses = await asyncio.gather(*(post_slack(stack, body, headers)
                                              for _ in range(10)))
            assert all(s == 200 for s, _ in statuses), batch
        # ... and 40 fresh clicks, as a lead hammering the button would send.
        for _ in range(4):
            await asyncio.gather(*(stack.emulator.click(LEAD, APPROVALS, request.ts,
                                                        ACTION_APPROVE, value)
                                   for _ in range(10)))
        await stack.drain()
        await stack.drain()
        assert len(sink.received) == 1
        async with stack.components.db.transaction() as tx:
            approvals = [e for e in await tx.audit_events(1) if e.action == "approve"]
        assert len(approvals) == 1
        assert (await case_row(stack, 1)).state == "replied"
        Tally("replayed Approve", {"clicks": 100, "replies_sent": len(sink.received),
                                   "approvals": len(approvals)}).print()


async def test_a_person_cannot_reopen_through_the_service(database_url: str, tmp_path: Path,
                                                         sink: ReplySink) -> None:
    async with team_stack(database_url, tmp_path, sink) as stack:
        world = await prepare(stack, sink)
        with pytest.raises(NotAllowed):
            await reopen_case(stack.components.services, world.cases["reopen"],
                              Actor(LEAD, Role.LEAD))
        assert (await case_row(stack, world.cases["reopen"])).state == "closed"
