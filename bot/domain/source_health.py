"""Whether a source is healthy, decided from its bookkeeping alone (pure, no I/O).

A source is *failing* after a permanent error (an expired token, a refused request) or after
`FAILURES_BEFORE_ALERT` transient failures in a row; one 5xx is the network's hiccup, not news
for the admin. It is *silent* when it has a `silence_alert_minutes` limit and nothing arrived
for longer than that (counted from when watching began if nothing ever arrived).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

FAILURES_BEFORE_ALERT = 3


class Condition(StrEnum):
    OK = "ok"
    WAITING = "waiting"  # configured, not polled or heard from yet
    FAILING = "failing"
    SILENT = "silent"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What the database remembers about a source (its cursor row), or nothing yet."""

    failures: int = 0
    permanent: bool = False
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    last_mention_at: datetime | None = None
    alerted: bool = False


@dataclass(frozen=True, slots=True)
class SourceHealthStatus:
    """One source's health as `/mentions status` and `/readyz` show it."""

    name: str
    kind: str
    condition: Condition
    reason: str
    last_success_at: datetime | None
    last_mention_at: datetime | None
    last_error: str | None
    failures: int
    alerted: bool

    @property
    def healthy(self) -> bool:
        return self.condition not in (Condition.FAILING, Condition.SILENT)

    def as_json(self) -> dict[str, object]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {
            "name": self.name, "kind": self.kind, "healthy": self.healthy,
            "condition": self.condition.value, "reason": self.reason,
            "last_success_at": iso(self.last_success_at),
            "last_mention_at": iso(self.last_mention_at),
            "failures": self.failures,
        }


def assess(
    name: str,
    kind: str,
    record: SourceRecord | None,
    now: datetime,
    *,
    enabled: bool = True,
    silence_alert_minutes: float | None = None,
    failures_before_alert: int = FAILURES_BEFORE_ALERT,
) -> SourceHealthStatus:
    """Decide one source's condition; the reason is one sentence a person can act on."""
    rec = record or SourceRecord()

    def status(condition: Condition, reason: str) -> SourceHealthStatus:
        return SourceHealthStatus(
            name=name, kind=kind, condition=condition, reason=reason,
            last_success_at=rec.last_success_at, last_mention_at=rec.last_mention_at,
            last_error=rec.last_error, failures=rec.failures, alerted=rec.alerted,
        )

    if not enabled:
        return status(Condition.DISABLED, "disabled in the configuration")
    if rec.failures and (rec.permanent or rec.failures >= failures_before_alert):
        what = "stopped: " if rec.permanent else f"{rec.failures} failed polls in a row: "
        return status(Condition.FAILING, what + (rec.last_error or "unknown error"))
    if record is None:
        return status(Condition.WAITING, "not polled or heard from yet")
    if silence_alert_minutes is not None and rec.last_mention_at is not None:
        quiet = now - rec.last_mention_at
        if quiet > timedelta(minutes=silence_alert_minutes):
            minutes = int(quiet.total_seconds() // 60)
            return status(Condition.SILENT, f"no mentions for {_span(minutes)} "
                                            f"(limit {silence_alert_minutes:g} min)")
    if rec.failures:
        return status(Condition.OK, f"{rec.failures} failed poll(s), retrying: "
                                    f"{rec.last_error or 'unknown error'}")
    return status(Condition.OK, "")


def _span(minutes: int) -> str:
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
