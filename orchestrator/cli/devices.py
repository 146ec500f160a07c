"""The farm's devices on the command line: `anefarm devices list` (live ones from Redis,
and this host's USB ones) and `anefarm devices release UDID` (out of quarantine)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli.groups import devices_app
from orchestrator.cli.options import JsonOpt, broker_url
from orchestrator.errors import UsageError
from orchestrator.settings import Settings, load_settings


def _usb_rows(settings: Settings) -> list[dict[str, Any]]:
    """USB devices on this host, when a usbmuxd is there to ask (macOS, or a fake one)."""
    import os
    from pathlib import Path

    if not (os.environ.get("USBMUXD_SOCKET_ADDRESS") or Path("/var/run/usbmuxd").exists()):
        return []
    from orchestrator.cli.devices_ios import list_ios_devices_json

    return list_ios_devices_json(settings)


def devices_list_cmd(as_json: JsonOpt = False) -> None:
    """Devices: the farm's (live, from Redis: state, reasons, last seen) and this host's USB ones."""
    from orchestrator.protocol import livestate

    settings = load_settings()
    rows: list[dict[str, Any]] = []
    if settings.broker_url:
        rows += [
            d.to_json() for d in livestate.live_devices(livestate.connect(settings.broker_url))
        ]
    usb = _usb_rows(settings)
    known = {row["udid"] for row in rows}
    rows += [{**row, "source": "usb"} for row in usb if row["udid"] not in known]
    if not settings.broker_url and not usb:
        raise UsageError(
            "no broker configured and no USB devices here",
            hint="set ANEFARM_BROKER_URL=redis://… to see the farm's devices",
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("udid", "ProductType", "OS", "agent", "state", "reasons", "kind")
    for d in rows:
        table.add_row(d["udid"], str(d.get("product_type")), str(d.get("os_version")), str(d.get("agent", "this host")),
                      d["state"], "; ".join(d.get("reasons", [])) or "–", "SIMULATED" if d.get("simulated") else "USB")  # fmt: skip
    Console().print(table)


def devices_release_cmd(
    udid: Annotated[str, typer.Argument(help="Device to take out of quarantine")],
) -> None:
    """Release a quarantined device (its agent restarts its worker)."""
    from orchestrator.protocol import livestate

    released = livestate.release(livestate.connect(broker_url(load_settings())), udid)
    typer.echo(f"{udid}: {'released' if released else 'was not quarantined'}")


def register(app: typer.Typer) -> None:
    devices_app.command("list")(devices_list_cmd)
    devices_app.command("release")(devices_release_cmd)
    app.add_typer(devices_app, name="devices")
