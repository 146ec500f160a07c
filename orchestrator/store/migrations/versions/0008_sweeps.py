"""the nightly sweeps (issue 17)

Placeholder created before the work started so that revisions stay linear while several
features are built at once; the feature fills it in.

Revision ID: 0008
Revises:  sweep definitions, nights, series records, missing records:0007
Create Date: 2026-11-27 13:05:00
"""

revision = "0008"
down_revision = " sweep definitions, nights, series records, missing records:0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the feature."""


def downgrade() -> None:
    """Filled in by the feature."""
