"""The case lifecycle as one table-driven state machine, plus the pure role guards.

The state lives on the database row; this module only says what may happen next and who may
make it happen. Drafting is work done while a case is `claimed`: a submitted draft moves it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REPLIED = "replied"
    CLOSED = "closed"


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    SUBMIT_DRAFT = "submit_draft"
    AUTO_APPROVE = "auto_approve"
    APPROVE = "approve"
    REJECT = "reject"
    MARK_REPLIED = "mark_replied"
    CLOSE = "close"
    REOPEN = "reopen"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    NO_ACTION = "no_action"
    SPAM = "spam"
    DUPLICATE = "duplicate"


OPEN_STATES = frozenset(State) - {State.CLOSED}

TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.NEW, Action.CLAIM): State.CLAIMED,
    (State.CLAIMED, Action.RELEASE): State.NEW,
    (State.CLAIMED, Action.SUBMIT_DRAFT): State.AWAITING_APPROVAL,
    (State.REPLIED, Action.SUBMIT_DRAFT): State.AWAITING_APPROVAL,
    (State.CLAIMED, Action.AUTO_APPROVE): State.APPROVED,
    (State.REPLIED, Action.AUTO_APPROVE): State.APPROVED,
    (State.AWAITING_APPROVAL, Action.APPROVE): State.APPROVED,
    (State.AWAITING_APPROVAL, Action.REJECT): State.CLAIMED,
    (State.APPROVED, Action.MARK_REPLIED): State.REPLIED,
    **{(state, Action.CLOSE): State.CLOSED for state in OPEN_STATES},
    (State.CLOSED, Action.REOPEN): State.NEW,
}

_EXPLAIN: dict[State, str] = {
    State.NEW: "it is not claimed yet",
    State.CLAIMED: "it is claimed",
    State.AWAITING_APPROVAL: "its draft is waiting for a lead's approval",
    State.APPROVED: "its reply is approved and being posted",
    State.REPLIED: "it has been replied to",
    State.CLOSED: "it is closed",
}

_VERB: dict[Action, str] = {
    Action.CLAIM: "claimed",
    Action.RELEASE: "released",
    Action.SUBMIT_DRAFT: "given a draft",
    Action.AUTO_APPROVE: "given a draft",
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.MARK_REPLIED: "marked as replied",
    Action.CLOSE: "closed",
    Action.REOPEN: "reopened",
}


class IllegalTransition(Exception):
    """The action does not apply to the case's current state; the message is user-facing."""

    def __init__(self, state: State, action: Action) -> None:
        self.state = state
        self.action = action
        super().__init__(f"This case cannot be {_VERB[action]}: {_EXPLAIN[state]}.")


class NotAllowed(Exception):
    """The actor may not do this; the message is user-facing."""


def apply(state: State, action: Action) -> State:
    """The next state, or `IllegalTransition`."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


class Role(StrEnum):
    LEAD = "lead"
    AGENT = "agent"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a Slack user with the role the server resolved (never what a card claims)."""

    user_id: str
    role: Role

    @property
    def is_lead(self) -> bool:
        return self.role is Role.LEAD


SYSTEM = Actor(user_id="mentiondesk", role=Role.LEAD)

class Rule(StrEnum):
    """Who may do something. Roles come from the server (`RolePolicy`), never from a card."""

    MEMBER = "any care-team member (agent or lead)"
    HOLDER_OR_LEAD = "the case's claimer or a lead (any member while it is unclaimed)"
    LEAD_NOT_DRAFTER = "a lead who did not write the draft"
    LEAD = "a lead"
    SYSTEM = "mentiondesk itself, never a person"


# The one authorization table: every guard below reads it, and SECURITY.md prints it.
# Keys are lifecycle actions plus the operations that are not transitions.
POLICY: dict[str, Rule] = {
    Action.CLAIM: Rule.MEMBER,
    Action.RELEASE: Rule.HOLDER_OR_LEAD,
    Action.SUBMIT_DRAFT: Rule.HOLDER_OR_LEAD,
    Action.AUTO_APPROVE: Rule.HOLDER_OR_LEAD,
    Action.APPROVE: Rule.LEAD_NOT_DRAFTER,
    Action.REJECT: Rule.LEAD_NOT_DRAFTER,
    Action.MARK_REPLIED: Rule.SYSTEM,
    Action.CLOSE: Rule.HOLDER_OR_LEAD,
    Action.REOPEN: Rule.SYSTEM,
    "retry_reply": Rule.HOLDER_OR_LEAD,
    "status": Rule.MEMBER,
    "mine": Rule.MEMBER,
    "find": Rule.MEMBER,
    "templates": Rule.MEMBER,
    "help": Rule.MEMBER,
    "report": Rule.LEAD,
    "export": Rule.LEAD,
}


def check_member(actor: Actor) -> None:
    if actor.role is Role.NONE:
        raise NotAllowed("Only members of the care team can work on mentions.")


def authorize(actor: Actor, operation: str, *, assignee: str | None = None,
              drafter: str | None = None) -> None:
    """Raise `NotAllowed` unless `POLICY` lets `actor` do `operation`. Unknown operations are
    refused: a new action must be added to the table before anyone may use it."""
    rule = POLICY.get(operation)
    if rule is None:
        raise NotAllowed("That is not something mentiondesk lets anyone do.")
    if rule is Rule.SYSTEM:
        if actor != SYSTEM:
            raise NotAllowed("Only mentiondesk itself does that.")
        return
    check_member(actor)
    if rule is Rule.HOLDER_OR_LEAD:
        if assignee and assignee != actor.user_id and not actor.is_lead:
            raise NotAllowed(
                f"This case is claimed by <@{assignee}>: only they or a lead can do that.")
    elif rule is Rule.LEAD:
        if not actor.is_lead:
            raise NotAllowed("Only a lead can do that.")
    elif rule is Rule.LEAD_NOT_DRAFTER and drafter is not None:
        check_may_decide(actor, drafter)


def check_may_act(actor: Actor, action: Action, assignee: str | None) -> None:
    """Only the claimer (or a lead) acts on a claimed case; anyone on the team may claim.
    Decisions on drafts are completed by `check_may_decide`, which knows the drafter."""
    authorize(actor, action, assignee=assignee)


def check_may_decide(actor: Actor, drafter: str) -> None:
    """The approver is a lead and not the drafter."""
    if not actor.is_lead:
        raise NotAllowed("Only a lead can approve or reject a reply.")
    if actor.user_id == drafter:
        raise NotAllowed("You cannot approve or reject your own draft; ask another lead.")
