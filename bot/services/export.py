"""CSV exports: one row per case (every timestamp, actor, outcome and KPI), or the audit log.

Rows are streamed from one query each; KPIs are computed by the database exactly as the report
computes them, so a spreadsheet built from the export agrees with `/mentions report`.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from bot.services.context import Services
from bot.services.reports import Period
from db import kpi
from db.models import AuditEventRow, CaseRow, MentionRow

CASE_COLUMNS = [
    "case_id", "network", "source_name", "external_id", "url", "author_handle", "state",
    "priority", "assignee", "closed_by", "outcome", "published_at", "received_at",
    "created_at", "carded_at", "claimed_at", "first_reply_at", "closed_at", "sla_due_at",
    "first_response_s", "resolution_s", "ingest_lag_s", "within_sla",
]
AUDIT_COLUMNS = ["id", "case_id", "at", "actor", "action", "from_state", "to_state", "payload"]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # spreadsheets must not run customer text as a formula
    return value


def _within(row: Any) -> str:
    if row.sla_due_at is None:
        return ""
    done = row.first_reply_at or row.closed_at
    if done is None:
        return ""
    return "yes" if done <= row.sla_due_at else "no"


async def cases_csv(services: Services, period: Period, network: str | None = None) -> str:
    window = kpi.Window(period.start, period.end, network)
    closer = AuditEventRow.__table__.alias("closer")
    latest_close = (
        select(closer.c.actor)
        .where(and_(closer.c.case_id == CaseRow.id, closer.c.action == "close"))
        .order_by(closer.c.id.desc()).limit(1).scalar_subquery()
    )
    async with services.db.snapshot() as tx:
        d = tx.dialect
        stmt = (
            select(CaseRow, MentionRow.external_id, MentionRow.url, MentionRow.received_at,
                   latest_close.label("closed_by"),
                   kpi.frt_expr(d).label("frt"), kpi.resolution_expr(d).label("res"),
                   kpi.lag_expr(d).label("lag"))
            .join(MentionRow, MentionRow.id == CaseRow.mention_id)
            .where(*window.where())
            .order_by(CaseRow.published_at, CaseRow.id)
        )
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CASE_COLUMNS)
        for case, external_id, url, received_at, closed_by, frt, res, lag in (
                await tx.session.execute(stmt)):
            writer.writerow([_cell(v) for v in (
                case.id, case.source, case.source_name, external_id, url, case.author_handle,
                case.state, case.priority, case.assignee, closed_by, case.outcome,
                case.published_at, received_at, case.created_at, case.carded_at,
                case.claimed_at, case.first_reply_at, case.closed_at, case.sla_due_at,
                frt, res, lag, _within(case))])
    return out.getvalue()


async def audit_csv(services: Services, period: Period) -> str:
    stmt = (
        select(AuditEventRow)
        .where(AuditEventRow.at >= period.start, AuditEventRow.at < period.end)
        .order_by(AuditEventRow.id)
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    async with services.db.snapshot() as tx:
        for event in (await tx.session.execute(stmt)).scalars():
            writer.writerow([_cell(v) for v in (
                event.id, event.case_id, event.at, event.actor, event.action,
                event.from_state, event.to_state,
                json.dumps(event.payload, ensure_ascii=False, sort_keys=True))])
    return out.getvalue()
