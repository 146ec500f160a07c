"""USB device discovery through usbmuxd: a one-shot list, and attach/detach following
for the agent supervisor (one worker per attached device)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from pymobiledevice3.usbmux import MuxConnection, create_mux, list_devices

from agents.devices.ios.errors import translating

log = logging.getLogger("anefarm.agent.discovery")
RECONNECT_S = 2.0  # usbmuxd restarts (macOS updates, Xcode) take a second or two
STOP_CHECK_S = 0.25


def _usb_serials(mux_devices: list[object]) -> set[str]:
    # A device on USB and Wi-Fi at once is listed twice; the farm drives USB only.
    return {d.serial for d in mux_devices if getattr(d, "connection_type", "USB") == "USB"}  # type: ignore[attr-defined]


def list_ios_devices(usbmux_address: str | None = None) -> list[str]:
    """UDIDs of the USB devices usbmuxd sees now (sorted)."""

    async def _list() -> list[str]:
        with translating("usbmuxd", "listing devices"):
            return sorted(_usb_serials(list(await list_devices(usbmux_address=usbmux_address))))

    return asyncio.run(_list())


def watch_devices(
    on_attach: Callable[[str], None],
    on_detach: Callable[[str], None],
    stop_event: threading.Event,
    *,
    usbmux_address: str | None = None,
) -> None:
    """Call ``on_attach(udid)`` / ``on_detach(udid)`` as USB devices come and go, until
    ``stop_event`` is set. Devices present at start are reported as attached. When
    usbmuxd goes away every known device is reported detached, and following resumes
    when it is back. Blocks: run it on its own thread."""
    asyncio.run(_watch(on_attach, on_detach, stop_event, usbmux_address))


async def _watch(
    on_attach: Callable[[str], None],
    on_detach: Callable[[str], None],
    stop_event: threading.Event,
    usbmux_address: str | None,
) -> None:
    known: set[str] = set()

    def update(now: set[str]) -> None:
        for udid in sorted(now - known):
            on_attach(udid)
        for udid in sorted(known - now):
            on_detach(udid)
        known.clear()
        known.update(now)

    while not stop_event.is_set():
        mux: MuxConnection | None = None
        try:
            mux = await create_mux(usbmux_address=usbmux_address)
            # Listen pushes an Attached message for every device already present.
            await mux.listen()
            while not stop_event.is_set():
                try:
                    await asyncio.wait_for(mux.receive_device_state_update(), STOP_CHECK_S)
                except TimeoutError:
                    continue
                update(_usb_serials(list(mux.devices)))
        except Exception as error:  # noqa: BLE001 - usbmuxd down or restarted: report and retry
            log.warning("usbmuxd connection lost (%s); retrying in %.0fs", error, RECONNECT_S)
            update(set())
            await asyncio.to_thread(stop_event.wait, RECONNECT_S)
        finally:
            if mux is not None:
                await mux.close()
