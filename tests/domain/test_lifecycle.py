"""Every (state, action) pair gives the next state or a clear refusal."""

from __future__ import annotations

import pytest

from bot.domain.lifecycle import (
    TRANSITIONS,
    Action,
    Actor,
    IllegalTransition,
    NotAllowed,
    Role,
    State,
    apply,
    check_may_act,
    check_may_decide,
)

S, A = State, Action
EXPECTED: dict[tuple[State, Action], State] = {
    (S.NEW, A.CLAIM): S.CLAIMED,
    (S.NEW, A.CLOSE): S.CLOSED,
    (S.CLAIMED, A.RELEASE): S.NEW,
    (S.CLAIMED, A.SUBMIT_DRAFT): S.AWAITING_APPROVAL,
    (S.CLAIMED, A.AUTO_APPROVE): S.APPROVED,
    (S.CLAIMED, A.CLOSE): S.CLOSED,
    (S.AWAITING_APPROVAL, A.APPROVE): S.APPROVED,
    (S.AWAITING_APPROVAL, A.REJECT): S.CLAIMED,
    (S.AWAITING_APPROVAL, A.CLOSE): S.CLOSED,
    (S.APPROVED, A.MARK_REPLIED): S.REPLIED,
    (S.APPROVED, A.CLOSE): S.CLOSED,
    (S.REPLIED, A.SUBMIT_DRAFT): S.AWAITING_APPROVAL,
    (S.REPLIED, A.AUTO_APPROVE): S.APPROVED,
    (S.REPLIED, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.NEW,
}


@pytest.mark.parametrize(("state", "action"), [(s, a) for s in State for a in Action])
def test_every_pair(state: State, action: Action) -> None:
    if (state, action) in EXPECTED:
        assert apply(state, action) is EXPECTED[(state, action)]
    else:
        with pytest.raises(IllegalTransition) as refused:
            apply(state, action)
        message = str(refusal := refused.value)
        assert message.startswith("This case cannot be ") and message.endswith(".")
        assert (refusal.state, refusal.action) == (state, action)


def test_table_is_exactly_the_expected_one() -> None:
    assert TRANSITIONS == EXPECTED


ANN = Actor("U1", Role.AGENT)
BOB = Actor("U2", Role.AGENT)
LEA = Actor("U3", Role.LEAD)
EVE = Actor("U4", Role.NONE)


@pytest.mark.parametrize(
    ("actor", "action", "assignee", "allowed"),
    [
        (ANN, A.CLAIM, None, True),
        (EVE, A.CLAIM, None, False),
        (ANN, A.RELEASE, "U1", True),
        (BOB, A.RELEASE, "U1", False),
        (LEA, A.RELEASE, "U1", True),
        (BOB, A.SUBMIT_DRAFT, "U1", False),
        (ANN, A.SUBMIT_DRAFT, "U1", True),
        (BOB, A.CLOSE, "U1", False),
        (LEA, A.CLOSE, "U1", True),
        (BOB, A.CLOSE, None, True),
        (EVE, A.CLOSE, None, False),
    ],
)
def test_holder_guard(actor: Actor, action: Action, assignee: str | None, allowed: bool) -> None:
    if allowed:
        check_may_act(actor, action, assignee)
    else:
        with pytest.raises(NotAllowed):
            check_may_act(actor, action, assignee)


@pytest.mark.parametrize(
    ("actor", "drafter", "allowed"),
    [(LEA, "U1", True), (LEA, "U3", False), (ANN, "U2", False), (EVE, "U1", False)],
)
def test_approver_is_a_lead_and_not_the_drafter(actor: Actor, drafter: str, allowed: bool
                                                ) -> None:
    if allowed:
        check_may_decide(actor, drafter)
    else:
        with pytest.raises(NotAllowed):
            check_may_decide(actor, drafter)
