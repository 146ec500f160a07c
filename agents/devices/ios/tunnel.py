"""The iOS 17+ developer-service transport: an RSD provider over the userspace tunnel
(17.4+) or through the root tunneld daemon (17.0–17.3).

pymobiledevice3 allows one userspace tunnel per process (a process-global TCP stack),
which is why each device has its own worker process and why only the process that runs
batches may open one.
"""

from __future__ import annotations

from typing import Any

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.services import RSD_MIN, USERSPACE_TUNNEL_MIN, os_tuple

# The open userspace tunnels of this process, by id() of the RSD they serve.
_TUNNELS: dict[int, Any] = {}


async def open_rsd(
    udid: str, os_version: str, *, tunneld_address: tuple[str, int] | None = None
) -> LockdownServiceProvider | None:
    """An RSD provider on iOS 17+ (None below 17: lockdown serves developer services)."""
    version = os_tuple(os_version)
    if version < RSD_MIN:
        return None
    if version >= USERSPACE_TUNNEL_MIN:
        from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel

        # No root needed; one tunnel per process, which is why a device has its own worker.
        tunnel = UserspaceRsdTunnel(serial=udid)
        rsd = await tunnel.aopen()
        _TUNNELS[id(rsd)] = tunnel
        return rsd
    from pymobiledevice3.exceptions import RSDRequiredError
    from pymobiledevice3.tunneld.api import TUNNELD_DEFAULT_ADDRESS, get_tunneld_device_by_udid

    # 17.0–17.3: only the root tunneld daemon can build the tunnel (docs/real-devices.md).
    found = await get_tunneld_device_by_udid(udid, tunneld_address or TUNNELD_DEFAULT_ADDRESS)
    if found is None:
        raise RSDRequiredError(udid, os_version)
    return found


async def close_rsd(provider: LockdownServiceProvider) -> None:
    tunnel = _TUNNELS.pop(id(provider), None)
    if tunnel is not None:
        await tunnel.aclose()
    else:
        close = getattr(provider, "close", None)
        if close is not None:
            await close()
