"""drop the unused agents table

Nothing ever wrote ``agents``: which agents are alive, and which devices they hold, is
live state in Redis (``orchestrator.protocol.livestate``: heartbeats with a time to
live), and each device row keeps the last agent that reported it (``devices.agent``).
A table beside it would only go stale.

The ``sweeps`` table stays: it becomes the stored sweep definitions of the nightly sweeps
(issue 17), which reshape it in their own revision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 13:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("agents")


def downgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
