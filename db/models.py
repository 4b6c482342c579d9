"""The tables. State changes and their audit events always commit together (see services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
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


class CaseRow(SQLModel, table=True):
    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_state_created", "state", "created_at"),
        Index("ix_case_assignee_state", "assignee", "state"),
        Index("ix_case_author", "author_handle", "source"),
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


class SlackDeliveryRow(SQLModel, table=True):
    """Slack requests already applied (event ids, action fingerprints): retries apply once."""

    __tablename__ = "slack_delivery"

    key: str = Field(primary_key=True, max_length=255)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
