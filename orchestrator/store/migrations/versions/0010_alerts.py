"""regression alerts, baselines and notifications (issue 18)

New tables only (nothing existing is rebuilt, so no cascade on SQLite, see 0006):

- ``night_analyses``: a night's analysis state (confirming, analysed, error);
- ``check_results``: per (night, series, device class, compute units, simulated, check)
  the night's status against its baseline, its message and figures;
- ``alert_summaries``: one per (sweep, night, cause), with its triage status, the last
  night that updated it and the worst effect seen (a worse night re-raises it);
- ``alert_findings``: the member findings of a summary;
- ``alert_triage``: who changed a summary's status, when, with a note;
- ``sweep_baselines``: baseline resets (an accepted change) and pinned named nights;
- ``notification_deliveries``: each webhook message and how it ended.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 13:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _fk(column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "night_analyses",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("job_id", "jobs.id"),
        _fk("sweep_id", "sweeps.id"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=256), nullable=False),
        sa.Column("device_class", sa.String(length=32), nullable=False),
        sa.Column("compute_units", sa.String(length=32), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("sweep_id", "sweeps.id"),
        _fk("job_id", "jobs.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "job_id",
            "series",
            "device_class",
            "compute_units",
            "simulated",
            "check",
            name="uq_check_results_key",
        ),
    )
    op.create_index("ix_check_results_sweep", "check_results", ["sweep_id", "series"])

    op.create_table(
        "alert_summaries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("last_job_id", sa.Uuid(), nullable=False),
        sa.Column("cause_key", sa.String(length=512), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("worst", sa.Float(), nullable=False),
        sa.Column("nights", sa.Integer(), nullable=False),
        sa.Column("raised", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("sweep_id", "sweeps.id"),
        _fk("job_id", "jobs.id"),
        _fk("last_job_id", "jobs.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sweep_id", "job_id", "cause_key", name="uq_alert_summaries_cause"),
    )
    op.create_index("ix_alert_summaries_status", "alert_summaries", ["status"])

    op.create_table(
        "alert_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=256), nullable=False),
        sa.Column("device_class", sa.String(length=32), nullable=False),
        sa.Column("compute_units", sa.String(length=32), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("magnitude", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("summary_id", "alert_summaries.id"),
        _fk("job_id", "jobs.id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_findings_summary", "alert_findings", ["summary_id"])

    op.create_table(
        "alert_triage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _fk("summary_id", "alert_summaries.id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_triage_summary", "alert_triage", ["summary_id"])

    op.create_table(
        "sweep_baselines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=256), nullable=True),
        sa.Column("device_class", sa.String(length=32), nullable=True),
        sa.Column("compute_units", sa.String(length=32), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("summary_id", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("sweep_id", "sweeps.id"),
        _fk("job_id", "jobs.id"),
        _fk("summary_id", "alert_summaries.id", "SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sweep_baselines_sweep", "sweep_baselines", ["sweep_id"])

    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("summary_id", "alert_summaries.id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notification_deliveries_summary", "notification_deliveries", ["summary_id"])


def downgrade() -> None:
    for table in ("notification_deliveries", "sweep_baselines", "alert_triage",
                  "alert_findings", "alert_summaries", "check_results", "night_analyses"):  # fmt: skip
        op.drop_table(table)
