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
