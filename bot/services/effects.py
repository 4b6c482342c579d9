"""Names of outbound effects. Each is an outbox row written in the state change's transaction."""

from __future__ import annotations

from enum import StrEnum


class Effect(StrEnum):
    CARD_POST = "card.post"
    CARD_UPDATE = "card.update"
    APPROVAL_POST = "approval.post"
    APPROVAL_UPDATE = "approval.update"
    REPLY_POST = "reply.post"
    NOTICE = "notice"
    SLA_NUDGE = "sla.nudge"
    SLA_ESCALATE = "sla.escalate"
    HOME_PUBLISH = "home.publish"
    GROUP_UPDATE = "group.update"
    """The lead card's thread message listing the cases grouped under it (posted, then edited)."""
    ALERT_POST = "alert.post"
    """A spike alert to the leads' channel; its dedup key makes it once per spike."""
