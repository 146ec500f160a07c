"""The fakes' iOS 17+ tunnel (the part of FakeDeveloperServices that opens and closes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

if TYPE_CHECKING:
    from tests.ios.fake_developer import FakeDeveloperServices


async def open_rsd(
    services: FakeDeveloperServices, udid: str, os_version: str
) -> LockdownServiceProvider | None:
    return None  # developer services ride on lockdown in the fakes, whatever the iOS


async def close_rsd(services: FakeDeveloperServices, provider: LockdownServiceProvider) -> None:
    return None
