"""runs.queued_at and runs.waiting_since: every run ends, even when its message is lost

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("runs", sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runs_status", "runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_column("runs", "waiting_since")
    op.drop_column("runs", "queued_at")
