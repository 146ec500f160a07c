"""Command groups that several CLI modules add commands to (so none imports another)."""

from __future__ import annotations

import typer

devices_app = typer.Typer(help="Device catalog and the devices of the farm.", no_args_is_help=True)
