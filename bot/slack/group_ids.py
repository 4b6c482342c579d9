"""The `Open` button beside each case listed in a group's thread, and its typed value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.slack.ids import BadButtonValue

ACTION_GROUP_OPEN = "group.open"
_VALUE = re.compile(r"^group:(\d{1,12}):case:(\d{1,12})$")


@dataclass(frozen=True, slots=True)
class GroupMemberValue:
    """Which member of which group: the server checks both before opening anything."""

    lead_id: int
    case_id: int

    def pack(self) -> str:
        return f"group:{self.lead_id}:case:{self.case_id}"

    @classmethod
    def unpack(cls, value: object) -> GroupMemberValue:
        match = _VALUE.match(value) if isinstance(value, str) else None
        if match is None:
            raise BadButtonValue
        return cls(lead_id=int(match.group(1)), case_id=int(match.group(2)))


def open_button(lead_id: int, case_id: int) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": ACTION_GROUP_OPEN,
        "text": {"type": "plain_text", "text": "Open"},
        "value": GroupMemberValue(lead_id, case_id).pack(),
        "accessibility_label": f"Give case #{case_id} its own card"[:75],
    }
