"""runs.pinned_udid: where a pinned batch waits, so the sweep can re-route it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("pinned_udid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "pinned_udid")
