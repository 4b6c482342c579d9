"""The tables. State changes and their audit events always commit together (see services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, SmallInteger, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy import text as sa_text
from sqlmodel import Field, SQLModel

from db.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class MentionRow(SQLModel, table=True):
    __tablename__ = "mention"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_mention_source_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)
    source_name: str = Field(max_length=64, default="")
    external_id: str = Field(max_length=255)
    url: str = Field(default="", sa_type=Text)
    author_handle: str = Field(default="", sa_type=Text)
    author_name: str = Field(default="", sa_type=Text)
    author_followers: int = Field(default=0, sa_type=BigInteger)
    author_verified: bool = False
    text: str = Field(sa_type=Text)
    lang: str | None = Field(default=None, max_length=16)
    in_reply_to: str | None = Field(default=None, max_length=255)
    thread_id: str | None = Field(default=None, max_length=255)
    published_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Triage signals, computed at ingest (bot/services/triage.py); the JSON holds all of them.
    sentiment: str = Field(default="neutral", max_length=16,
                           sa_column_kwargs={"server_default": "neutral"})
    sentiment_score: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    language: str | None = Field(default=None, max_length=16)
    spam: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    signals: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default=sa_text("'{}'")),
    )


class CaseRow(SQLModel, table=True):
    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_state_created", "state", "created_at"),
        Index("ix_case_assignee_state", "assignee", "state"),
        Index("ix_case_author", "author_handle", "source"),
        # Covering index for reports: the period's rows are read from the index alone.
        Index("ix_case_report", "published_at", "source", "assignee", "outcome", "sentiment",
              "first_response_seconds", "resolution_seconds", "lag_seconds", "within_sla",
              "sla_due_at"),
        Index("ix_case_state_sla", "state", "sla_due_at"),
        Index("ix_case_state_assignee", "state", "assignee"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mention.id", unique=True)
    source: str = Field(max_length=64)
    source_name: str = Field(max_length=64, default="")
    author_handle: str = Field(default="", max_length=255)
    state: str = Field(max_length=32, default="new")
    version: int = 1
    assignee: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_type=Text)
    priority: str = Field(default="normal", max_length=16)
    channel: str = Field(default="", max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    reply_ref: str | None = Field(default=None, sa_type=Text)
    reply_url: str | None = Field(default=None, sa_type=Text)
    reply_error: str | None = Field(default=None, sa_type=Text)
    published_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    carded_at: datetime | None = _ts()
    claimed_at: datetime | None = _ts()
    first_reply_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    sla_due_at: datetime | None = _ts()
    # KPI values written by a database trigger (migration 0007) whenever the timestamps above
    # are set: seconds from published to first reply / close / card, and the SLA result
    # (1 met, 0 missed, NULL not yet known). Reports aggregate these, never recompute them.
    first_response_seconds: float | None = None
    resolution_seconds: float | None = None
    lag_seconds: float | None = None
    within_sla: int | None = Field(default=None, sa_type=SmallInteger)
    # Triage: why this priority, the lead case of a group of near-identical mentions, the
    # sentiment label reports count, and the spiking topic a complaint is part of (if any).
    sentiment: str = Field(default="neutral", max_length=16,
                           sa_column_kwargs={"server_default": "neutral"})
    priority_score: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    priority_reasons: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sa_text("'[]'")),
    )
    group_id: int | None = Field(default=None, index=True)
    group_thread_ts: str | None = Field(default=None, max_length=32)
    trend_topic: str | None = Field(default=None, max_length=64)


class SlaTimerRow(SQLModel, table=True):
    """One nudge or escalation per case; `status` pending → fired | cancelled, exactly once."""

    __tablename__ = "sla_timer"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", name="uq_sla_timer_case_kind"),
        Index("ix_sla_timer_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    kind: str = Field(max_length=16)
    priority: str = Field(max_length=16, default="normal")
    status: str = Field(max_length=16, default="pending")
    due_at: datetime = Field(sa_type=UTCDateTime)
    fired_at: datetime | None = _ts()
    cancelled_at: datetime | None = _ts()
    created_at: datetime = Field(sa_type=UTCDateTime)


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DraftRow(SQLModel, table=True):
    __tablename__ = "draft"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    author: str = Field(max_length=32)
    template: str | None = Field(default=None, max_length=128)
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: str = Field(sa_type=Text)
    original_text: str | None = Field(default=None, sa_type=Text)  # the agent's, if a lead edited
    preapproved: bool = False
    edited: bool = False
    status: str = Field(default="pending", max_length=16)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = _ts()
    reason: str | None = Field(default=None, sa_type=Text)
    approval_channel: str | None = Field(default=None, max_length=32)
    approval_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "available_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    dedup_key: str | None = Field(default=None, max_length=255, unique=True)
    case_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    available_at: datetime = Field(sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts()
    lease_token: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = _ts()


class SourceCursorRow(SQLModel, table=True):
    __tablename__ = "source_cursor"

    source: str = Field(primary_key=True, max_length=64)
    cursor: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    last_success_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_at: datetime | None = _ts()
    failures: int = 0
    alerted: bool = False
    permanent: bool = False
    last_mention_at: datetime | None = _ts()


class SourceLeaseRow(SQLModel, table=True):
    """Who polls a source: one holder at a time; `fence` grows on every takeover."""

    __tablename__ = "source_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    fence: int = 1
    expires_at: datetime = Field(sa_type=UTCDateTime)


class SlackDeliveryRow(SQLModel, table=True):
    """Slack requests already applied (event ids, action fingerprints): retries apply once."""

    __tablename__ = "slack_delivery"

    key: str = Field(primary_key=True, max_length=255)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)


class SlackPaceRow(SQLModel, table=True):
    """Shared Slack pacing: when the next call under `key` conforms (all processes agree)."""

    __tablename__ = "slack_pace"

    key: str = Field(primary_key=True, max_length=128)
    next_at: datetime = Field(sa_type=UTCDateTime)
    paused_until: datetime | None = _ts()


class DigestRow(SQLModel, table=True):
    """One storm digest card: many cases summed up in a channel, listed in its thread."""

    __tablename__ = "digest"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    topic: str = Field(default="", sa_type=Text)
    size: int = 0
    urgent: int = 0
    message_ts: str | None = Field(default=None, max_length=32)
    pages_posted: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)


class DigestMemberRow(SQLModel, table=True):
    """A case listed in a digest instead of getting its own card up front."""

    __tablename__ = "digest_member"

    case_id: int = Field(primary_key=True)
    digest_id: int = Field(foreign_key="digest.id", index=True)
    page: int = 0


class TriageStateRow(SQLModel, table=True):
    """Shared triage state (the spike detector's baselines and cool-downs) that every process
    reads and writes under a row lock, so restarts and several workers agree."""

    __tablename__ = "triage_state"

    name: str = Field(primary_key=True, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime)
