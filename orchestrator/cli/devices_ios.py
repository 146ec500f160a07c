"""Real iOS devices on the command line: `anefarm devices pair UDID`, and the rows that
`anefarm devices list` shows for USB devices (``list_ios_devices_json``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.errors import AnefarmError, ConfigError, DeviceError, DeviceNotReady, UsageError
from orchestrator.settings import Settings


def list_ios_devices_json(
    settings: Settings,
    *,
    usbmux_address: str | None = None,
    pair_records_dir: Path | None = None,
    developer_services: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per USB device: udid, product_type, os_version, state, reasons, simulated.

    ``state`` is ``ready``, ``not_ready`` (with reasons) or ``unreachable``. Reads only;
    it never pairs, but it does install the configured runner if it is missing (as the
    agent would). ``USBMUXD_SOCKET_ADDRESS`` is honoured when ``usbmux_address`` is None.
    ``developer_services(udid)`` replaces the real developer services (tests, fake farms).
    """
    try:
        from agents.devices.ios import IOSDevice, list_ios_devices
    except ImportError as error:  # pymobiledevice3 is the optional "agent" extra
        raise ConfigError(
            f"the iOS driver is not installed ({error.name})",
            hint="pip install 'anefarm[agent]'",
        ) from error
    rows: list[dict[str, Any]] = []
    for udid in list_ios_devices(usbmux_address):
        row: dict[str, Any] = {"udid": udid, "product_type": None, "os_version": None,
                               "state": "unreachable", "reasons": [], "simulated": False}  # fmt: skip
        try:
            extra = {} if developer_services is None else {"services": developer_services(udid)}
            device = IOSDevice.from_settings(
                udid,
                settings,
                usbmux_address=usbmux_address,
                pair_records_dir=pair_records_dir,
                **extra,
            )
        except AnefarmError as error:
            row["reasons"] = [error.one_line()]
            rows.append(row)
            continue
        try:
            readiness = device.readiness()
            row.update(product_type=device.identity.product_type,
                       os_version=device.identity.os_version, reasons=list(readiness.reasons),
                       state="ready" if readiness.ready else "not_ready",
                       simulated=device.identity.simulated)  # fmt: skip
        finally:
            device.close()
        rows.append(row)
    return rows


def pair_device(
    udid: str,
    *,
    usbmux_address: str | None = None,
    timeout_s: float = 120.0,
    pair_records_dir: Path | None = None,
) -> str:
    """Pair this host with a device (the user taps Trust and enters the passcode)."""
    from pymobiledevice3.exceptions import (
        PairingDialogResponsePendingError,
        UserDeniedPairingError,
    )
    from pymobiledevice3.lockdown import create_using_usbmux

    from agents.devices.ios.errors import translating

    async def _pair() -> str:
        with translating(udid, "pairing"):
            try:
                lockdown = await create_using_usbmux(
                    serial=udid,
                    autopair=True,
                    pair_timeout=timeout_s,
                    usbmux_address=usbmux_address,
                    pairing_records_cache_folder=pair_records_dir,
                )
            except PairingDialogResponsePendingError as error:
                reason = (
                    f"no answer to the Trust dialog within {timeout_s:.0f}s: "
                    "unlock the device and tap Trust"
                )
                raise DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason]) from error
            except UserDeniedPairingError as error:
                reason = "the Trust dialog was declined: run the command again and tap Trust"
                raise DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason]) from error
            try:
                return str(lockdown.all_values.get("DeviceName", udid))
            finally:
                await lockdown.close()

    return asyncio.run(_pair())


def devices_pair(
    udid: Annotated[str, typer.Argument(help="UDID from `anefarm devices list`")],
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for Trust on the device")
    ] = 120.0,
) -> None:
    """Pair this Mac with a device: unlock it and tap Trust when asked (once per host)."""
    if not udid.strip():
        raise UsageError("a UDID is required", hint="see `anefarm devices list`")
    typer.echo(f"Unlock {udid} and tap Trust on its screen…", err=True)
    try:
        name = pair_device(udid, timeout_s=timeout_s)
    except DeviceError as error:
        raise DeviceError(
            error.message, udid=udid, hint="unlock the device, tap Trust, retry"
        ) from error
    typer.echo(f"paired with {name} ({udid})")


def register(app: typer.Typer) -> None:
    from orchestrator.cli.pipeline import devices_app

    devices_app.command("pair")(devices_pair)
