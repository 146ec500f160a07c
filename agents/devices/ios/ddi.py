"""The Developer Disk Image: mounted after every boot before developer services work."""

from __future__ import annotations

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider


async def mount(provider: LockdownServiceProvider) -> None:
    from pymobiledevice3.exceptions import AlreadyMountedError
    from pymobiledevice3.services.mobile_image_mounter import auto_mount

    try:
        await auto_mount(provider)
    except AlreadyMountedError:
        return  # the usual case after the first run since boot
