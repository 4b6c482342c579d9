"""What every use case needs: the database, a clock, and the team's role policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.services.triage import Triage
from db.store import Database

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Services:
    """Dependencies of the use cases, built by the composition root."""

    db: Database
    clock: Clock = utc_now
    default_channel: str = "C0MENTIONS"
    approvals_channel: str = "C0APPROVALS"
    approval_in_thread: bool = False
    allow_preapproved_without_approval: bool = False
    triage: Triage = field(default_factory=Triage)
