"""sla timers and report indexes

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("due_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "kind", name="uq_sla_timer_case_kind"),
    )
    op.create_index("ix_sla_timer_due", "sla_timer", ["status", "due_at"], unique=False)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sla_due_at", db.types.UTCDateTime(timezone=True), nullable=True))
    # Covering index for reports: a period's rows are read from the index alone.
    op.create_index("ix_case_report", "case",
                    ["published_at", "source", "assignee", "outcome", "first_reply_at",
                     "closed_at", "carded_at", "sla_due_at"], unique=False)
    op.create_index("ix_case_state_sla", "case", ["state", "sla_due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_state_sla", table_name="case")
    op.drop_index("ix_case_report", table_name="case")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("sla_due_at")
    op.drop_index("ix_sla_timer_due", table_name="sla_timer")
    op.drop_table("sla_timer")
