"""Action and view ids, and the typed values packed into buttons.

Handlers never split strings: `ButtonValue.unpack` is the one parser, and it refuses anything
that is not exactly what `pack` produces (a forged value is a clear error, not a crash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACTION_CLAIM = "mention.claim"
ACTION_RELEASE = "mention.release"
ACTION_DRAFT = "mention.draft"
ACTION_CLOSE = "mention.close"
ACTION_APPROVE = "draft.approve"
ACTION_REJECT = "draft.reject"
ACTION_RETRY = "reply.retry"
ACTION_LINK = "mention.open"
ACTION_TEMPLATE_PICK = "draft.template"
ACTION_DRAFT_INPUT = "draft.input"
ACTION_APPROVE_EDIT = "draft.approve_edit"

VIEW_CLOSE = "case.close"
VIEW_DRAFT = "case.draft"
VIEW_REJECT = "draft.reject"
VIEW_APPROVE_EDIT = "draft.approve_edit"

BLOCK_OUTCOME = "outcome"
BLOCK_NOTE = "note"
BLOCK_TEMPLATE = "template"
BLOCK_TEXT = "text"
BLOCK_REASON = "reason"
VAR_BLOCK_PREFIX = "var__"

_VALUE = re.compile(r"^case:(\d{1,12})(?::draft:(\d{1,12}))?$")


class BadButtonValue(ValueError):
    def __init__(self) -> None:
        super().__init__("That button is not one mentiondesk made; nothing was changed.")


@dataclass(frozen=True, slots=True)
class ButtonValue:
    """What a button carries: the case, and for approval buttons the draft it approves."""

    case_id: int
    draft_id: int | None = None

    def pack(self) -> str:
        tail = f":draft:{self.draft_id}" if self.draft_id is not None else ""
        return f"case:{self.case_id}{tail}"

    @classmethod
    def unpack(cls, value: object) -> ButtonValue:
        match = _VALUE.match(value) if isinstance(value, str) else None
        if match is None:
            raise BadButtonValue
        draft = match.group(2)
        return cls(case_id=int(match.group(1)), draft_id=int(draft) if draft else None)
