"""Pairing this host with a device: the one place an agent asks for the Trust dialog
(``autopair=True``); everything else in the driver connects with ``autopair=False``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pymobiledevice3.exceptions import PairingDialogResponsePendingError, UserDeniedPairingError
from pymobiledevice3.lockdown import create_using_usbmux

from agents.devices.ios.errors import translating
from orchestrator.errors import DeviceNotReady


def pair_device(
    udid: str,
    *,
    usbmux_address: str | None = None,
    timeout_s: float = 120.0,
    pair_records_dir: Path | None = None,
) -> str:
    """Pair this host with a device (the user taps Trust and enters the passcode)."""

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
