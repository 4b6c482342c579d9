"""First-response SLA policy and business-hours arithmetic. Pure: no clock, no database.

Due times are computed in business time: a mention that arrives on Friday evening with a
one-hour target is due one business hour after Monday's opening, not at 19:00 on Friday.
All arithmetic is done on UTC instants; local wall-clock only decides where windows open and
close, so daylight-saving changes shift the window, never the length of an hour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|min|s)", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
MAX_SEARCH_DAYS = 800


class DurationError(ValueError):
    pass


def parse_duration(value: str | float) -> timedelta:
    """`15` (minutes), `"15m"`, `"1h"`, `"1h30m"`, `"2d"`, `"90s"` → a positive timedelta."""
    if isinstance(value, bool):
        raise DurationError("expected a duration such as '15m', '1h' or a number of minutes")
    if isinstance(value, int | float):
        seconds = float(value) * 60
    else:
        text = value.strip().replace(" ", "")
        parts = list(_PART.finditer(text))
        if not parts or "".join(p.group(0) for p in parts) != text:
            raise DurationError(f"'{value}' is not a duration such as '15m', '1h' or '1h30m'")
        seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2).lower()] for p in parts)
    if seconds <= 0:
        raise DurationError("a duration must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Short and human: `45 min`, `2 h 5 min`, `3 d 4 h`; negative deltas get a minus sign."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{total} s" if total else "0 min"


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Open on `days` (0 = Monday) from `start` to `end` local time in `zone`."""

    zone: ZoneInfo
    days: frozenset[int]
    start: time
    end: time

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening and closing as UTC instants, or None when closed all day."""
        if day.weekday() not in self.days:
            return None
        opens = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
        return (opens, closes) if closes > opens else None


def add_business_time(start: datetime, amount: timedelta, hours: BusinessHours | None
                      ) -> datetime:
    """The instant `amount` of business time after `start` (plain addition without hours)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC)
    if hours is None:
        return start + amount
    if not hours.days:
        raise ValueError("business hours need at least one open day")
    remaining = amount
    cursor = start
    day = start.astimezone(hours.zone).date() - timedelta(days=1)
    for _ in range(MAX_SEARCH_DAYS + int(amount.total_seconds() // 86400) * 7):
        window = hours.window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        opens, closes = window
        if closes <= cursor:
            continue
        cursor = max(cursor, opens)
        available = closes - cursor
        if remaining <= available:
            return cursor + remaining
        remaining -= available
        cursor = closes
    raise ValueError("no business hours found within the search horizon")


@dataclass(frozen=True, slots=True)
class SlaDue:
    nudge_at: datetime
    breach_at: datetime
    target: timedelta


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """First-response targets per priority; a nudge goes out `nudge_before` the breach.

    `nudge_before` is either a fraction of the target (0.25: with three quarters of the time
    used up) or a fixed amount of business time before the breach.
    """

    targets: Mapping[str, timedelta] = field(default_factory=dict)
    nudge_before: float | timedelta = 0.25
    hours: BusinessHours | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def target(self, priority: str | None) -> timedelta | None:
        return self.targets.get(priority or "normal") or self.targets.get("normal")

    def due(self, started_at: datetime, priority: str | None) -> SlaDue | None:
        target = self.target(priority)
        if target is None:
            return None
        if isinstance(self.nudge_before, timedelta):
            lead = min(self.nudge_before, target)
        else:
            lead = target * self.nudge_before
        return SlaDue(
            nudge_at=add_business_time(started_at, target - lead, self.hours),
            breach_at=add_business_time(started_at, target, self.hours),
            target=target,
        )
