"""regression alerts, baselines and notifications (issue 18)

Placeholder created before the work started so that revisions stay linear while several
features are built at once; the feature fills it in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 13:05:00
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the feature."""


def downgrade() -> None:
    """Filled in by the feature."""
