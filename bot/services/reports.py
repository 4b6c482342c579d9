"""Leads' figures: `/mentions report`, `mentiondesk report`, the App Home's KPIs and status.

Every figure comes from SQL aggregates (db/kpi.py); this module folds a few grouped rows into
totals, per agent and per network, and compares with the period of the same length before.
KPI definitions are in the README ("KPIs").
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from bot.services.context import Services
from db import kpi
from db.grouped import waiting_members
from db.kpi import GroupRow, Pct, Window
from db.store import Tx

T = TypeVar("T")

MAX_DAYS = 366
_DAYS = re.compile(r"^(\d{1,3})d$")
_DATE = r"\d{4}-\d{2}-\d{2}"
_SPAN = re.compile(rf"^({_DATE})(?:\.\.({_DATE}))?$")
_LOOKS_LIKE_RANGE = re.compile(r"^(\d|today$|yesterday$)")
_NETWORK = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RangeError(ValueError):
    """A period the user typed that we cannot read; the message is user-facing."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    label: str
    zone: ZoneInfo

    def previous(self) -> Period:
        length = self.end - self.start
        return Period(self.start - length, self.start, f"the {self.label} before", self.zone)

    def days(self) -> list[date]:
        first = self.start.astimezone(self.zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def parse_period(text: str, now: datetime, zone: ZoneInfo) -> Period:
    """`today`, `yesterday`, `7d`, `30d` (N days ending now, today included),
    `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (whole days, both included, in `zone`)."""
    text = text.strip().lower() or "7d"
    today = now.astimezone(zone).date()
    until = now + timedelta(microseconds=1)  # periods ending now include this instant
    if text == "today":
        return Period(_midnight(today, zone), until, "today", zone)
    if text == "yesterday":
        day = today - timedelta(days=1)
        return Period(_midnight(day, zone), _midnight(today, zone), "yesterday", zone)
    if match := _DAYS.match(text):
        days = int(match.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise RangeError(f"A period is 1 to {MAX_DAYS} days long.")
        start = _midnight(today - timedelta(days=days - 1), zone)
        return Period(start, until, f"last {days} days", zone)
    if match := _SPAN.match(text):
        try:
            first = date.fromisoformat(match.group(1))
            last = date.fromisoformat(match.group(2) or match.group(1))
        except ValueError:
            raise RangeError(f"'{text}' is not a real date.") from None
        if last < first:
            raise RangeError("The range ends before it starts.")
        if (last - first).days + 1 > MAX_DAYS:
            raise RangeError(f"A period is 1 to {MAX_DAYS} days long.")
        label = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
        return Period(_midnight(first, zone), _midnight(last + timedelta(days=1), zone), label,
                      zone)
    raise RangeError(f"'{text}' is not a period: use today, 7d, 30d or "
                     "YYYY-MM-DD..YYYY-MM-DD.")


def parse_report_args(words: list[str], now: datetime, zone: ZoneInfo
                      ) -> tuple[Period, str | None]:
    """`[range] [network]` in either order."""
    period_text, network = "", None
    for word in (w.strip().lower() for w in words if w.strip()):
        if _LOOKS_LIKE_RANGE.match(word) and not period_text:
            period_text = word
        elif _NETWORK.match(word) and network is None:
            network = word
        else:
            raise RangeError(f"I don't understand '{word[:40]}'.")
    return parse_period(period_text, now, zone), network


@dataclass(frozen=True, slots=True)
class Figures:
    received: int = 0
    spam: int = 0
    duplicates: int = 0
    """Copies grouped under a lead case: answered through the lead, so not counted again."""
    replied: int = 0
    closed: int = 0
    frt_mean_s: float | None = None
    frt_median_s: float | None = None
    frt_p90_s: float | None = None
    resolution_median_s: float | None = None
    lag_median_s: float | None = None
    sla_met: int = 0
    sla_counted: int = 0

    @property
    def counted(self) -> int:
        """Received, spam and grouped copies excluded: the response rate's denominator."""
        return self.received - self.spam - self.duplicates

    @property
    def response_rate(self) -> float | None:
        return self.replied / self.counted if self.counted else None

    @property
    def within_sla(self) -> float | None:
        return self.sla_met / self.sla_counted if self.sla_counted else None


@dataclass(frozen=True, slots=True)
class GroupFigures:
    name: str
    received: int
    replied: int
    response_rate: float | None
    frt_mean_s: float | None
    within_sla: float | None


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    received: int
    frt_mean_s: float | None


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    network: str | None
    current: Figures
    previous: Figures
    outcomes: dict[str, int]
    sentiment: dict[str, int] | None
    by_agent: list[GroupFigures]
    by_network: list[GroupFigures]
    daily: list[DayFigures]
    sla_target_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.current.received == 0

    def as_json(self) -> dict[str, Any]:
        def figures(f: Figures) -> dict[str, Any]:
            return {**asdict(f), "response_rate": f.response_rate, "within_sla": f.within_sla}

        return {
            "period": {"label": self.period.label, "start": self.period.start.isoformat(),
                       "end": self.period.end.isoformat(), "timezone": str(self.period.zone)},
            "network": self.network,
            "current": figures(self.current),
            "previous": figures(self.previous),
            "outcomes": self.outcomes,
            "sentiment": self.sentiment,
            "by_agent": [asdict(g) for g in self.by_agent],
            "by_network": [asdict(g) for g in self.by_network],
            "daily": [{"day": d.day.isoformat(), "received": d.received,
                       "frt_mean_s": d.frt_mean_s} for d in self.daily],
            "sla_target_s": self.sla_target_s,
        }


def _fold(rows: list[GroupRow], pct: list[float | None]) -> Figures:
    ham = [r for r in rows if r.outcome not in kpi.NOT_COUNTED]
    replied = sum(r.replied for r in ham)
    frt_sum = sum(r.frt_sum for r in ham)
    return Figures(
        received=sum(r.received for r in rows),
        spam=sum(r.received for r in rows if r.outcome == kpi.SPAM),
        duplicates=sum(r.received for r in rows if r.outcome == kpi.DUPLICATE),
        replied=replied,
        closed=sum(r.closed for r in ham),
        frt_mean_s=frt_sum / replied if replied else None,
        frt_median_s=pct[0], frt_p90_s=pct[1], resolution_median_s=pct[2],
        lag_median_s=pct[3],
        sla_met=sum(r.sla_met for r in ham),
        sla_counted=sum(r.sla_counted for r in ham),
    )


def _groups(rows: list[GroupRow], key: str) -> list[GroupFigures]:
    buckets: dict[str, list[GroupRow]] = defaultdict(list)
    for row in rows:
        if row.outcome not in kpi.NOT_COUNTED:
            buckets[getattr(row, key) or "unassigned"].append(row)
    out = []
    for name, group in buckets.items():
        received = sum(r.received for r in group)
        replied = sum(r.replied for r in group)
        met, counted = sum(r.sla_met for r in group), sum(r.sla_counted for r in group)
        out.append(GroupFigures(
            name=name, received=received, replied=replied,
            response_rate=replied / received if received else None,
            frt_mean_s=sum(r.frt_sum for r in group) / replied if replied else None,
            within_sla=met / counted if counted else None,
        ))
    return sorted(out, key=lambda g: (-g.received, g.name))


def _day_bounds(period: Period) -> list[datetime]:
    """The local midnights that cut the period into the team's days (and the period's end)."""
    days = period.days()
    return [_midnight(d, period.zone) for d in days] + [
        _midnight(days[-1] + timedelta(days=1), period.zone)]


def _daily(period: Period, sums: list[tuple[int, int, int, float]]) -> list[DayFigures]:
    days = period.days()
    totals = {i: (n, r, s) for i, n, r, s in sums}
    return [DayFigures(day, totals.get(i, (0, 0, 0.0))[0],
                       totals[i][2] / totals[i][1] if totals.get(i, (0, 0))[1] else None)
            for i, day in enumerate(days)]


PARALLEL_READS = 4
"""Report queries running at once, each in its own read snapshot (a connection apiece)."""

class _Reads:
    """Runs a report's independent queries side by side, each in its own read snapshot, at
    most `PARALLEL_READS` at a time. Sorting for percentiles dominates a long report and
    SQLite sorts on the calling connection's thread, so parallel snapshots use every core.
    The snapshots may be a commit apart; each figure is consistent within itself."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.gate = asyncio.Semaphore(PARALLEL_READS)

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        async with self.gate, self.services.db.snapshot() as tx:
            return await work(tx)


async def _figures(reads: _Reads, window: Window, now: datetime, *,
                   breakdown: bool = True) -> tuple[list[GroupRow], Figures]:
    """The period's figures; `breakdown` also groups them by network, agent, outcome and
    sentiment (the period before needs totals only, a cheaper plain aggregate, which on
    PostgreSQL takes the percentiles in the same pass)."""
    dialect = reads.services.db.dialect

    async def additive(tx: Tx) -> tuple[list[GroupRow], Pct | None]:
        if breakdown:
            return await kpi.grouped(tx, window, now), None
        return await kpi.totals(tx, window, now)

    separate = breakdown or dialect != "postgresql"
    async with asyncio.TaskGroup() as group:
        main = group.create_task(reads.run(additive))
        parts = [group.create_task(reads.run(read))
                 for read in (kpi.percentile_reads(dialect, window) if separate else [])]
    rows, pct = main.result()
    pct = {**(pct or {}), **{k: v for part in parts for k, v in part.result().items()}}
    return rows, _fold(rows, [*pct["frt"], *pct["resolution"], *pct["lag"]])


def _sentiment(rows: list[GroupRow]) -> dict[str, int]:
    mix: dict[str, int] = defaultdict(int)
    for row in rows:
        mix[str(row.sentiment)] += row.received
    return dict(mix)


async def build_report(services: Services, period: Period, network: str | None = None, *,
                       sla_target: timedelta | None = None) -> Report:
    now = services.clock()
    window = Window(period.start, period.end, network)
    previous = period.previous()
    reads = _Reads(services)
    async with asyncio.TaskGroup() as group:
        this = group.create_task(_figures(reads, window, now))
        before_task = group.create_task(_figures(
            reads, Window(previous.start, previous.end, network), now, breakdown=False))
        daily = group.create_task(reads.run(
            partial(kpi.daily, window=window, bounds=_day_bounds(period))))
    (rows, current), (_, before) = this.result(), before_task.result()
    days = daily.result() if rows else []
    outcomes: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.closed:
            outcomes[row.outcome or "none"] += row.closed
    return Report(
        period=period, network=network, current=current, previous=before,
        outcomes=dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
        sentiment=_sentiment(rows) if rows else None,
        by_agent=_groups(rows, "agent"), by_network=_groups(rows, "network"),
        daily=_daily(period, days),
        sla_target_s=sla_target.total_seconds() if sla_target else None,
    )


@dataclass(frozen=True, slots=True)
class SourceState:
    source: str
    last_success_at: datetime | None
    last_error: str | None
    failures: int


@dataclass(frozen=True, slots=True)
class TeamStatus:
    open_by_state: dict[str, int]
    oldest_unclaimed_id: int | None
    oldest_unclaimed_since: datetime | None
    at_risk: int
    breached: int
    load: dict[str, int]
    sources: list[SourceState]
    outbox: dict[str, int]
    now: datetime
    grouped: int = 0
    """Unclaimed cases grouped under a lead's card: received, but the lead is the work."""


async def team_status(services: Services) -> TeamStatus:
    """What `/mentions status` shows; every query is index-backed (open states only)."""
    now = services.clock()
    async with services.db.snapshot() as tx:
        by_state, load = await kpi.open_cases(tx)
        grouped = await waiting_members(tx)
        if grouped:
            by_state["new"] = by_state.get("new", 0) - grouped
        oldest = await tx.oldest_in_state("new")
        at_risk, breached = await kpi.sla_risk(tx, now)
        cursors = await kpi.source_health(tx)
        outbox = await tx.outbox_counts()
    return TeamStatus(
        open_by_state=by_state,
        oldest_unclaimed_id=oldest.id if oldest else None,
        oldest_unclaimed_since=oldest.published_at if oldest else None,
        at_risk=at_risk, breached=breached, load=load,
        sources=[SourceState(c.source, c.last_success_at, c.last_error, c.failures)
                 for c in cursors],
        outbox=outbox, now=now, grouped=grouped,
    )


async def today_figures(services: Services, zone: ZoneInfo) -> Figures:
    """Today's KPIs (team time zone) for the App Home: one plain aggregate and percentiles."""
    period = parse_period("today", services.clock(), zone)
    _, figures = await _figures(_Reads(services), Window(period.start, period.end),
                                services.clock(), breakdown=False)
    return figures
