"""report speed: per-case KPI columns kept by the database, a narrower report index

Reports used to compute every case's first-response, resolution and ingest-lag seconds (and
its SLA result) from timestamps on each read, then sort them for percentiles. The values are
now columns written when the timestamps that determine them are: a trigger on `case` fills
them on insert and whenever `published_at`, `carded_at`, `first_reply_at`, `closed_at` or
`sla_due_at` is set, with the very expressions the report used, so every figure stays the same.
A trigger (not application code) keeps them because every writer of those timestamps (ingest,
claims, replies, closes, reopens, SLA timers, bulk loads) then agrees without being told.

`within_sla` is 1 (answered, or closed unanswered, by the due time), 0 (too late) or NULL (no
SLA, or nothing happened yet: whether it is counted depends on the time the report is asked).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KPI_INPUTS = "published_at, carded_at, first_reply_at, closed_at, sla_due_at"
REPORT_INDEX = ["published_at", "source", "assignee", "outcome", "sentiment",
                "first_response_seconds", "resolution_seconds", "lag_seconds", "within_sla",
                "sla_due_at"]
OLD_REPORT_INDEX = ["published_at", "source", "assignee", "outcome", "first_reply_at",
                    "closed_at", "carded_at", "sla_due_at"]


def _sqlite_seconds(end: str, prefix: str = "") -> str:
    # The report's former expression: julianday() is a double, rounded to the millisecond.
    return (f"round((julianday({prefix}{end}) - julianday({prefix}published_at)) * 86400.0, 3)")


def _pg_seconds(end: str, prefix: str = "") -> str:
    return f"CAST(EXTRACT(epoch FROM {prefix}{end} - {prefix}published_at) AS FLOAT)"


def _within_sla(prefix: str = "") -> str:
    p = prefix
    return (f"CASE WHEN {p}sla_due_at IS NULL THEN NULL "
            f"WHEN {p}first_reply_at IS NOT NULL "
            f"THEN CASE WHEN {p}first_reply_at <= {p}sla_due_at THEN 1 ELSE 0 END "
            f"WHEN {p}closed_at IS NOT NULL "
            f"THEN CASE WHEN {p}closed_at <= {p}sla_due_at THEN 1 ELSE 0 END "
            f"ELSE NULL END")


def _sqlite_assignments() -> str:
    return (f"first_response_seconds = {_sqlite_seconds('first_reply_at')}, "
            f"resolution_seconds = {_sqlite_seconds('closed_at')}, "
            f"lag_seconds = {_sqlite_seconds('carded_at')}, "
            f"within_sla = {_within_sla()}")


def _pg_function() -> str:
    n = "NEW."
    return f"""
CREATE FUNCTION case_kpi() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.first_response_seconds := {_pg_seconds('first_reply_at', n)};
    NEW.resolution_seconds := {_pg_seconds('closed_at', n)};
    NEW.lag_seconds := {_pg_seconds('carded_at', n)};
    NEW.within_sla := {_within_sla(n)};
    RETURN NEW;
END
$$"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_case_report", table_name="case")
    op.add_column("case", sa.Column("first_response_seconds", sa.Float(), nullable=True))
    op.add_column("case", sa.Column("resolution_seconds", sa.Float(), nullable=True))
    op.add_column("case", sa.Column("lag_seconds", sa.Float(), nullable=True))
    op.add_column("case", sa.Column("within_sla", sa.SmallInteger(), nullable=True))
    if dialect == "postgresql":
        op.execute(_pg_function())
        op.execute('CREATE TRIGGER case_kpi_insert BEFORE INSERT ON "case" FOR EACH ROW '
                   "WHEN (NEW.carded_at IS NOT NULL OR NEW.first_reply_at IS NOT NULL OR "
                   "NEW.closed_at IS NOT NULL OR NEW.sla_due_at IS NOT NULL) "
                   "EXECUTE FUNCTION case_kpi()")
        op.execute(f'CREATE TRIGGER case_kpi_update BEFORE UPDATE OF {KPI_INPUTS} ON "case" '
                   "FOR EACH ROW EXECUTE FUNCTION case_kpi()")
        # Backfill: setting an input to itself runs the trigger on every existing row.
        op.execute('UPDATE "case" SET published_at = published_at')
    else:
        op.execute(f'UPDATE "case" SET {_sqlite_assignments()}')
        op.execute('CREATE TRIGGER case_kpi_insert AFTER INSERT ON "case" '
                   "WHEN NEW.carded_at IS NOT NULL OR NEW.first_reply_at IS NOT NULL OR "
                   "NEW.closed_at IS NOT NULL OR NEW.sla_due_at IS NOT NULL "
                   f'BEGIN UPDATE "case" SET {_sqlite_assignments()} WHERE id = NEW.id; END')
        op.execute(f'CREATE TRIGGER case_kpi_update AFTER UPDATE OF {KPI_INPUTS} ON "case" '
                   f'BEGIN UPDATE "case" SET {_sqlite_assignments()} WHERE id = NEW.id; END')
    # A period's rows, read from the index alone, with every value the report aggregates.
    op.create_index("ix_case_report", "case", REPORT_INDEX, unique=False)
    # `/mentions status`: open cases by state and assignee without touching the table.
    op.create_index("ix_case_state_assignee", "case", ["state", "assignee"], unique=False)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_case_state_assignee", table_name="case")
    op.drop_index("ix_case_report", table_name="case")
    op.execute('DROP TRIGGER IF EXISTS case_kpi_update' +
               (' ON "case"' if dialect == "postgresql" else ""))
    op.execute('DROP TRIGGER IF EXISTS case_kpi_insert' +
               (' ON "case"' if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS case_kpi()")
    with op.batch_alter_table("case") as batch:
        batch.drop_column("within_sla")
        batch.drop_column("lag_seconds")
        batch.drop_column("resolution_seconds")
        batch.drop_column("first_response_seconds")
    op.create_index("ix_case_report", "case", OLD_REPORT_INDEX, unique=False)
