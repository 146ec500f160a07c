"""statuses and states as enums: jobs.status, jobs.bisect, runs.status, runs.bisect_state,
run_attempts.outcome

The ORM now maps these columns to StrEnums (``store.models._enum_of``): a non-native
``sqlalchemy.Enum`` is a VARCHAR of the same length holding the same values, so the stored
data and the column types stay exactly as they were and this revision runs no DDL. It
marks the point from which the ORM reads members and refuses values outside the enums.

No CHECK constraint is added, on purpose (the Enum type is declared with
``create_constraint=False``, so the ORM expects none either):

- on SQLite a constraint can only be added by rebuilding the table (batch mode copies
  ``runs`` and drops the old one); with ``PRAGMA foreign_keys=ON``, which every connection
  of ours sets, dropping ``runs`` cascades deletes into run_attempts, measurements,
  verdicts and op_placements. Adding it on PostgreSQL only would make the two schemas
  differ.
- every write goes through the ORM, which validates (``validate_strings=True``), and a
  new status would otherwise need a migration of its own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 11:00:00
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change in the database (see the module docstring)."""


def downgrade() -> None:
    """Nothing to undo."""
