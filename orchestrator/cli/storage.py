"""Placeholder: filled in by its own work item."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this family's commands to `app`."""
