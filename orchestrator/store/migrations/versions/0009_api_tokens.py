"""the HTTP API's tokens (issue 19)

Placeholder created before the work started so that revisions stay linear while several
features are built at once; the feature fills it in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 13:05:00
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the feature."""


def downgrade() -> None:
    """Filled in by the feature."""
