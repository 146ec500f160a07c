"""alert_triage.night: the sweep night whose analysis made a move (a recovery)

A summary closed as ``recovered`` named its night only in the triage note's prose
("recovered on night 2026-03-15: …"), and ``alerts list|show`` read it back with a regular
expression: rewording the note would have lost it. The night is now a column of the
triage entry, NULL for a person's move. Rows from before get it from their note (the one
wording ``store.close_recovered`` ever wrote), in SQL both databases read alike.

Plain ALTER TABLE both ways, no batch mode (see 0011): SQLite ≥ 3.35 drops a column in
place.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PREFIX = "recovered on night "  # then YYYY-MM-DD: what close_recovered wrote


def upgrade() -> None:
    op.add_column("alert_triage", sa.Column("night", sa.Date(), nullable=True))
    # SQLite keeps a Date as its ISO text; PostgreSQL needs the cast.
    day = f"substr(note, {len(PREFIX) + 1}, 10)"
    value = day if op.get_bind().dialect.name == "sqlite" else f"CAST({day} AS DATE)"
    op.execute(
        f"UPDATE alert_triage SET night = {value}"  # noqa: S608 - constants only
        f" WHERE to_status = 'recovered' AND note LIKE '{PREFIX}____-__-__%'"
    )


def downgrade() -> None:
    op.drop_column("alert_triage", "night")
