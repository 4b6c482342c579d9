"""triage signals, grouping and spike state

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.add_column("mention", sa.Column("sentiment", _STR(length=16), nullable=False,
                                       server_default="neutral"))
    op.add_column("mention", sa.Column("sentiment_score", sa.Float(), nullable=False,
                                       server_default="0"))
    op.add_column("mention", sa.Column("language", _STR(length=16), nullable=True))
    op.add_column("mention", sa.Column("spam", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("mention", sa.Column("signals", sa.JSON(), nullable=False,
                                       server_default=sa.text("'{}'")))

    op.add_column("case", sa.Column("sentiment", _STR(length=16), nullable=False,
                                    server_default="neutral"))
    op.add_column("case", sa.Column("priority_score", sa.Integer(), nullable=False,
                                    server_default="0"))
    op.add_column("case", sa.Column("priority_reasons", sa.JSON(), nullable=False,
                                    server_default=sa.text("'[]'")))
    op.add_column("case", sa.Column("group_id", sa.Integer(), nullable=True))
    op.add_column("case", sa.Column("group_thread_ts", _STR(length=32), nullable=True))
    op.add_column("case", sa.Column("trend_topic", _STR(length=64), nullable=True))
    op.create_index("ix_case_group_id", "case", ["group_id"])

    op.create_table(
        "triage_state",
        sa.Column("name", _STR(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("triage_state")
    op.drop_index("ix_case_group_id", table_name="case")
    with op.batch_alter_table("case") as batch:
        for column in ("trend_topic", "group_thread_ts", "group_id", "priority_reasons",
                       "priority_score", "sentiment"):
            batch.drop_column(column)
    with op.batch_alter_table("mention") as batch:
        for column in ("signals", "spam", "language", "sentiment_score", "sentiment"):
            batch.drop_column(column)
