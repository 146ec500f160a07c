"""Pipeline commands: submit, agent, coordinator, status, report, cancel, profile, devices."""

from __future__ import annotations

import typer

devices_app = typer.Typer(help="Device catalog and the devices of the farm.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")
