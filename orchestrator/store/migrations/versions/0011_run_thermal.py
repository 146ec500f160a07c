"""runs.thermal_state: how hot the device was while it measured the run

Attribution (issue 18) must say what differed between the baseline's nights and tonight,
and a device that throttles (ProcessInfo.thermalState serious or critical) makes every
latency slower without anything else changing: without the state per run, such a night
reads "device/OS unchanged, model unchanged" and looks like a real regression. The runner
reports the state before and after its batch; ingest keeps the worse of the two (the
hottest the device said it was during the run). Rows from before stay NULL (unknown).

Plain ALTER TABLE both ways, no batch mode: on SQLite a batch rebuild of ``runs`` drops the
old table, which with ``PRAGMA foreign_keys=ON`` cascades deletes into every run's
attempts, measurements and verdicts (see 0006); SQLite ≥ 3.35 drops a column in place.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("thermal_state", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "thermal_state")
