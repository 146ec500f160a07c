"""measurements.cold_load_provenance: what each cold load followed

A cold load right after a compile, the first in a fresh process, and one of a model the
process had already loaded differ several-fold; the figure is only comparable with others
of the same provenance, so it is stored next to it. Rows from before stay NULL (unknown).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch_op:
        batch_op.add_column(sa.Column("cold_load_provenance", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch_op:
        batch_op.drop_column("cold_load_provenance")
