"""bisection: job bisect mode, probe run details, the parent's bisection state, and the
compatibility matrix's status, reason, context and lint columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("bisect", sa.String(length=16), server_default="auto", nullable=False)
    )
    op.add_column("runs", sa.Column("probe_repeat", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("runner_version", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("bisect_state", sa.String(length=16), nullable=True))
    op.add_column("runs", sa.Column("bisection", sa.JSON(), nullable=True))
    op.add_column(
        "probe_results",
        sa.Column("status", sa.String(length=16), server_default="placed", nullable=False),
    )
    op.add_column("probe_results", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("probe_results", sa.Column("op_type", sa.String(length=128), nullable=True))
    op.add_column("probe_results", sa.Column("device_class", sa.String(length=32), nullable=True))
    op.add_column("probe_results", sa.Column("os_version", sa.String(length=32), nullable=True))
    op.add_column(
        "probe_results", sa.Column("repeat", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column("probe_results", sa.Column("lint_unit", sa.String(length=16), nullable=True))
    op.add_column("probe_results", sa.Column("lint_rule", sa.String(length=64), nullable=True))
    op.add_column("probe_results", sa.Column("lint_reason", sa.Text(), nullable=True))
    op.add_column("probe_results", sa.Column("lint_fix", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("lint_fix", "lint_reason", "lint_rule", "lint_unit", "repeat", "os_version",
                   "device_class", "op_type", "reason", "status"):  # fmt: skip
        op.drop_column("probe_results", column)
    for column in ("bisection", "bisect_state", "runner_version", "probe_repeat"):
        op.drop_column("runs", column)
    op.drop_column("jobs", "bisect")
