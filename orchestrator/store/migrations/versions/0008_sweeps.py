"""the nightly sweeps (issue 17): sweep definitions, nights, series, missing records

- ``sweeps`` is **reshaped** into the stored sweep definitions. The table came with the
  first schema (0001) and was never written (``selector``, ``models``, ``spec``; 0007 kept
  it for this revision): those three columns go, and the definition arrives as ``name``
  (unique), ``definition`` (the validated YAML, JSON), ``schedule`` (cron text),
  ``timezone``, ``paused``, ``source_path`` and ``updated_at``. Rows cannot exist (nothing
  ever inserted one); should one exist anyway it is kept under its id with an empty
  definition and a name of its own (``sweep-<id>``), paused, so nothing fires from it.
  SQLite rebuilds the table (batch mode); ``jobs.sweep_id`` still points at it, and since
  no job refers to a sweep yet, dropping the old copy deletes nothing.
- ``jobs``: a night is a job with ``scheduled_for``, ``started_at``, ``late`` and
  ``trigger`` (manual | schedule), and one night per (sweep, scheduled time): a UNIQUE
  index ``uq_jobs_sweep_scheduled_for``, an index rather than a table constraint so that
  SQLite adds it without rebuilding ``jobs`` (a rebuild would cascade deletes into runs,
  see 0006).
- ``runs.series``: the series name of a night's run.
- ``sweep_missing``: a series with no point tonight, and why ("missing is data").

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 13:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("definition", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("schedule", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )
        batch.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("source_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    sweeps = sa.table(
        "sweeps",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("definition", sa.JSON()),
        sa.column("schedule", sa.String()),
        sa.column("paused", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    # Never written, so normally a no-op; a stray row becomes a paused, empty definition.
    op.execute(
        sweeps.update().values(
            name=sa.literal("sweep-") + sa.cast(sweeps.c.id, sa.String()),
            definition=sa.literal({}, sa.JSON()),
            schedule="0 0 * * *",
            paused=True,
            updated_at=sweeps.c.created_at,
        )
    )
    with op.batch_alter_table("sweeps") as batch:
        batch.alter_column("definition", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("schedule", existing_type=sa.String(length=128), nullable=False)
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("selector")
        batch.drop_column("models")
        batch.drop_column("spec")
        batch.create_unique_constraint("uq_sweeps_name", ["name"])

    op.add_column("jobs", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs", sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("jobs", sa.Column("trigger", sa.String(length=16), nullable=True))
    op.create_index(
        "uq_jobs_sweep_scheduled_for", "jobs", ["sweep_id", "scheduled_for"], unique=True
    )
    op.add_column("runs", sa.Column("series", sa.String(length=256), nullable=True))

    op.create_table(
        "sweep_missing",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=256), nullable=False),
        sa.Column("device_class", sa.String(length=32), nullable=True),
        sa.Column("compute_units", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=True),
        sa.Column("model_sha256", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sweep_missing_job", "sweep_missing", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_sweep_missing_job", table_name="sweep_missing")
    op.drop_table("sweep_missing")
    op.drop_column("runs", "series")
    op.drop_index("uq_jobs_sweep_scheduled_for", table_name="jobs")
    for column in ("trigger", "late", "started_at", "scheduled_for"):
        op.drop_column("jobs", column)
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_constraint("uq_sweeps_name", type_="unique")
        batch.add_column(sa.Column("selector", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("models", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
    sweeps = sa.table(
        "sweeps",
        sa.column("selector", sa.String()),
        sa.column("models", sa.JSON()),
        sa.column("spec", sa.JSON()),
        sa.column("definition", sa.JSON()),
    )
    op.execute(
        sweeps.update().values(
            selector=sa.literal(""),
            models=sa.literal([], sa.JSON()),
            spec=sweeps.c.definition,
        )
    )
    with op.batch_alter_table("sweeps") as batch:
        batch.alter_column("selector", existing_type=sa.String(length=512), nullable=False)
        batch.alter_column("models", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("spec", existing_type=sa.JSON(), nullable=False)
        for column in ("updated_at", "source_path", "paused", "timezone", "schedule",
                       "definition"):  # fmt: skip
            batch.drop_column(column)
