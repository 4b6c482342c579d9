"""KPI queries: SQL aggregates over an indexed range of `case.published_at`.

Nothing here loops over cases in Python: each query returns a handful of grouped rows.
Per-case KPI values are stored columns kept by a trigger (migration 0007), read straight from
the covering index `ix_case_report`; nothing is recomputed from timestamps per read.
Percentiles are PostgreSQL's `percentile_cont`; SQLite has none, so the same linear
interpolation is computed from the two rows around the rank (`ORDER BY … LIMIT 2 OFFSET k`).
Each function reads within one transaction; the report runs them in parallel snapshots.
`seconds_between` and the `*_expr` helpers remain for the per-case export.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import pairwise
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, null, or_, select, union_all
from sqlalchemy.sql import ColumnElement

from bot.domain.lifecycle import OPEN_STATES, Outcome
from db.models import CaseRow, SlaTimerRow, SourceCursorRow
from db.store import Tx

SPAM = Outcome.SPAM.value
DUPLICATE = Outcome.DUPLICATE.value
NOT_COUNTED = (SPAM, DUPLICATE)
"""Outcomes outside the team's figures: spam, and copies grouped under a lead case, which
are closed on arrival and answered through their lead (counting them would halve a
response rate and put zero-second resolutions into the median)."""
OPEN = sorted(s.value for s in OPEN_STATES)


def seconds_between(dialect: str, end: Any, start: Any) -> ColumnElement[Any]:
    """`end − start` in seconds, NULL when either is NULL."""
    if dialect == "sqlite":
        # julianday() is a double: round away its sub-millisecond noise.
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)
    return cast(func.extract("epoch", end - start), Float)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    network: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses = [CaseRow.published_at >= self.start, CaseRow.published_at < self.end]
        if self.network:
            clauses.append(CaseRow.source == self.network)
        return clauses


@dataclass(frozen=True, slots=True)
class GroupRow:
    """Additive figures for one (network, agent, outcome, sentiment) group."""

    network: str
    agent: str | None
    outcome: str | None
    received: int
    replied: int
    frt_sum: float
    closed: int
    resolution_sum: float
    lag_n: int
    lag_sum: float
    sla_met: int
    sla_counted: int
    sentiment: str | None = None


def _counted() -> ColumnElement[bool]:
    return or_(CaseRow.outcome.is_(None), CaseRow.outcome.not_in(NOT_COUNTED))


def frt_expr(dialect: str) -> ColumnElement[Any]:
    return seconds_between(dialect, CaseRow.first_reply_at, CaseRow.published_at)


def resolution_expr(dialect: str) -> ColumnElement[Any]:
    return seconds_between(dialect, CaseRow.closed_at, CaseRow.published_at)


def lag_expr(dialect: str) -> ColumnElement[Any]:
    return seconds_between(dialect, CaseRow.carded_at, CaseRow.published_at)


def sla_counted_expr(now: datetime) -> ColumnElement[Any]:
    """Cases whose SLA result is known: handled (`within_sla` set), or past due still waiting."""
    waiting_past_due = and_(CaseRow.within_sla.is_(None), CaseRow.sla_due_at <= now)
    return case((CaseRow.within_sla.is_not(None), 1), (waiting_past_due, 1), else_=0)


async def grouped(tx: Tx, window: Window, now: datetime) -> list[GroupRow]:
    """One pass over the period's slice of `ix_case_report`, summing the stored KPI columns."""
    c = CaseRow
    stmt = (
        select(
            c.source, c.assignee, c.outcome, c.sentiment,
            func.count(),
            func.count(c.first_response_seconds),
            func.coalesce(func.sum(c.first_response_seconds), 0.0),
            func.count(c.resolution_seconds),
            func.coalesce(func.sum(c.resolution_seconds), 0.0),
            func.count(c.lag_seconds),
            func.coalesce(func.sum(c.lag_seconds), 0.0),
            func.coalesce(func.sum(c.within_sla), 0),
            func.sum(sla_counted_expr(now)),
        )
        .where(*window.where())
        .group_by(c.source, c.assignee, c.outcome, c.sentiment)
    )
    return [
        GroupRow(str(r[0]), r[1], r[2], int(r[4]), int(r[5]), float(r[6]), int(r[7]),
                 float(r[8]), int(r[9]), float(r[10]), int(r[11] or 0), int(r[12] or 0),
                 sentiment=r[3])
        for r in await tx.session.execute(stmt)
    ]


async def totals(tx: Tx, window: Window, now: datetime
                 ) -> tuple[list[GroupRow], dict[str, list[float | None]] | None]:
    """The period's figures as up to three rows (spam, grouped copies and the rest) when no
    breakdown is needed: a plain aggregate, so SQLite streams the index without sorting
    into groups. PostgreSQL takes the percentiles in the same pass (`percentile_cont …
    FILTER`) and returns them too; on SQLite the second value is None (see `percentiles`)."""
    c = CaseRow
    spam = case((c.outcome == SPAM, 1), else_=0)
    duplicate = case((c.outcome == DUPLICATE, 1), else_=0)
    ham = _counted()

    def of_ham(col: Any) -> ColumnElement[Any]:
        return case((ham, col), else_=null())

    stmt = select(
        func.count(), func.coalesce(func.sum(spam), 0), func.coalesce(func.sum(duplicate), 0),
        func.count(of_ham(c.first_response_seconds)),
        func.coalesce(func.sum(of_ham(c.first_response_seconds)), 0.0),
        func.count(of_ham(c.resolution_seconds)),
        func.coalesce(func.sum(of_ham(c.resolution_seconds)), 0.0),
        func.count(of_ham(c.lag_seconds)), func.coalesce(func.sum(of_ham(c.lag_seconds)), 0.0),
        func.coalesce(func.sum(of_ham(c.within_sla)), 0),
        func.coalesce(func.sum(of_ham(sla_counted_expr(now))), 0),
    ).where(*window.where())
    pg = tx.dialect == "postgresql"
    if pg:
        stmt = stmt.add_columns(*[func.percentile_cont(p).within_group(col).filter(ham)
                                  for _name, col, ps in PERCENTILES for p in ps])
    r = (await tx.session.execute(stmt)).one()
    received, spam_n, duplicate_n = int(r[0]), int(r[1]), int(r[2])
    pct = _named(iter(r[11:])) if pg else None
    if received == 0:
        return [], pct
    rows = [GroupRow("", None, None, received - spam_n - duplicate_n, int(r[3]), float(r[4]),
                     int(r[5]), float(r[6]), int(r[7]), float(r[8]), int(r[9]), int(r[10]))]
    for outcome, n in ((SPAM, spam_n), (DUPLICATE, duplicate_n)):
        if n:
            rows.append(GroupRow("", None, outcome, n, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0))
    return rows, pct


def _named(values: Iterator[Any]) -> dict[str, list[float | None]]:
    return {name: [None if (v := next(values)) is None else float(v) for _ in ps]
            for name, _col, ps in PERCENTILES}


async def daily(tx: Tx, window: Window, bounds: Sequence[datetime]
                ) -> list[tuple[int, int, int, float]]:
    """(day index, received, replied, first-response seconds summed) for each local day
    `[bounds[i], bounds[i+1])`: one plain range aggregate per day, glued with UNION ALL, so
    neither database sorts the period into groups and any time zone offset is exact."""
    c = CaseRow
    frt = case((_counted(), c.first_response_seconds), else_=null())
    parts = []
    for i, (start, end) in enumerate(pairwise(bounds)):
        day = Window(max(start, window.start), min(end, window.end), window.network)
        parts.append(select(literal(i).label("i"), func.count().label("n"),
                            func.count(frt).label("r"),
                            func.coalesce(func.sum(frt), 0.0).label("s"))
                     .where(*day.where()))
    if not parts:
        return []
    result = await tx.session.execute(union_all(*parts))
    return [(int(i), int(n), int(r), float(s)) for i, n, r, s in result]


# The percentiles a report shows: (name, stored column, percentiles), over counted cases.
PERCENTILES: tuple[tuple[str, Any, tuple[float, ...]], ...] = (
    ("frt", CaseRow.first_response_seconds, (0.5, 0.9)),
    ("resolution", CaseRow.resolution_seconds, (0.5,)),
    ("lag", CaseRow.lag_seconds, (0.5,)),
)


def _interpolate(n: int, p: float, values: Sequence[float]) -> float:
    """`percentile_cont`: linear interpolation between the values at ranks ⌊(n−1)p⌋ and +1."""
    pos = (n - 1) * p
    low = values[0]
    high = values[1] if len(values) > 1 else low
    return low + (high - low) * (pos - math.floor(pos))


async def percentiles(tx: Tx, window: Window) -> dict[str, list[float | None]]:
    """PostgreSQL: every percentile of the period's counted cases in one statement."""
    where = [*window.where(), _counted()]
    cols = [func.percentile_cont(p).within_group(col)
            for _name, col, ps in PERCENTILES for p in ps]
    return _named(iter((await tx.session.execute(select(*cols).where(*where))).one()))


Pct = dict[str, list[float | None]]


def percentile_reads(dialect: str, window: Window) -> list[Callable[[Tx], Awaitable[Pct]]]:
    """The reads that give the period's percentiles, each able to run in its own snapshot:
    one statement on PostgreSQL, one read per column on SQLite."""
    if dialect == "postgresql":
        return [partial(percentiles, window=window)]

    async def column(tx: Tx, name: str) -> Pct:
        return {name: await column_percentiles(tx, window, name)}

    return [partial(column, name=name) for name, _col, _ps in PERCENTILES]


async def column_percentiles(tx: Tx, window: Window, name: str) -> list[float | None]:
    """SQLite, which has no `percentile_cont`: the same interpolation from the two values
    around each rank (`ORDER BY … LIMIT 2 OFFSET k`), counted in the same snapshot. Upper
    percentiles read from the top, so the bounded sort keeps the smaller side of the rank."""
    _name, col, ps = next(entry for entry in PERCENTILES if entry[0] == name)
    where = [*window.where(), _counted(), col.is_not(None)]
    n = int((await tx.session.execute(select(func.count()).where(*where))).scalar_one())
    out: list[float | None] = []
    for p in ps:
        if n == 0:
            out.append(None)
            continue
        low = math.floor((n - 1) * p)
        want = 2 if low + 1 < n else 1
        from_top = p > 0.5
        stmt = (select(col).where(*where).order_by(col.desc() if from_top else col)
                .limit(want).offset(n - low - want if from_top else low))
        values = sorted(float(v) for v in (await tx.session.execute(stmt)).scalars())
        out.append(_interpolate(n, p, values) if values else None)
    return out


# -- status -------------------------------------------------------------------------------

async def open_cases(tx: Tx) -> tuple[dict[str, int], dict[str, int]]:
    """(open cases by state, open cases by assignee) from one walk of `ix_case_state_assignee`
    over the open states only: already in (state, assignee) order, so nothing is sorted."""
    stmt = (select(CaseRow.state, CaseRow.assignee, func.count())
            .where(CaseRow.state.in_(OPEN))
            .group_by(CaseRow.state, CaseRow.assignee))
    by_state: dict[str, int] = defaultdict(int)
    load: dict[str, int] = defaultdict(int)
    for state, assignee, n in await tx.session.execute(stmt):
        by_state[str(state)] += int(n)
        if assignee is not None:
            load[str(assignee)] += int(n)
    return dict(by_state), dict(load)


async def sla_risk(tx: Tx, now: datetime) -> tuple[int, int]:
    """(at risk, breached) among open cases still waiting for their first reply.

    At risk: the nudge time has passed but the breach has not; breached: past the due time.
    """
    waiting = [CaseRow.state.in_(OPEN), CaseRow.first_reply_at.is_(None),
               CaseRow.sla_due_at.is_not(None)]
    breached = (await tx.session.execute(
        select(func.count()).select_from(CaseRow).where(*waiting, CaseRow.sla_due_at <= now)
    )).scalar_one()
    at_risk = (await tx.session.execute(
        select(func.count()).select_from(CaseRow)
        .join(SlaTimerRow, and_(SlaTimerRow.case_id == CaseRow.id, SlaTimerRow.kind == "nudge"))
        .where(*waiting, CaseRow.sla_due_at > now, SlaTimerRow.due_at <= now)
    )).scalar_one()
    return int(at_risk), int(breached)


async def source_health(tx: Tx) -> list[SourceCursorRow]:
    stmt = select(SourceCursorRow).order_by(SourceCursorRow.source)
    return list((await tx.session.execute(stmt)).scalars())
