"""Readiness of a real device, with reasons a person can act on.

Checks run in the order a person fixes them (pair, unlock, Developer Mode, developer
image/tunnel, runner, battery, temperature) and stop at the first check that makes the
later ones meaningless (nothing else can be read from an unpaired device).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.devices.base import Readiness
from agents.devices.ios.connection import Battery, DeviceLink
from agents.devices.ios.errors import DEVMODE_REASON, LOCKED_REASON, unpaired_reason
from orchestrator.errors import DeviceNotReady


@dataclass(frozen=True)
class RunnerConfig:
    """Which runner app the driver launches, and where to get it."""

    bundle_id: str = "org.anefarm.runner"
    expected_version: str | None = None  # CFBundleVersion; None accepts any installed build
    ipa_path: Path | None = None  # installed or upgraded from here when missing or stale
    process_name: str = "AneFarmRunner"  # executable name, for crash reports


@dataclass(frozen=True)
class HealthLimits:
    min_battery_percent: float = 20.0  # below this the device must be charging
    max_temperature_c: float = 40.0  # battery temperature; iOS throttles from ~40 °C on


def _not_ready(reasons: list[str], **facts: object) -> Readiness:
    return Readiness(reasons=reasons, **facts)  # type: ignore[arg-type]


async def check(
    link: DeviceLink,
    os_version: str,
    runner: RunnerConfig,
    limits: HealthLimits,
    *,
    deep: bool = True,
) -> Readiness:
    """Never raises for a not-ready device; DeviceGone propagates (the device is not there).

    ``deep=False`` is the heartbeat's check, made by the process that does not run batches:
    lockdown-level only. It opens no developer connection (on iOS 17.4+ that is the
    process's one userspace tunnel, which the batch process needs) and installs nothing."""
    if not await link.paired():
        return _not_ready([unpaired_reason(link.udid)], paired=False)
    if await link.locked():
        # A paired device serves lockdown while locked, but launching the runner fails:
        # the heartbeat (lockdown level only) must see the lock itself.
        return _not_ready([LOCKED_REASON])
    if not await link.developer_mode(os_version):
        return _not_ready([DEVMODE_REASON], developer_mode=False)
    reasons: list[str] = []
    try:
        if deep:
            await link.developer(os_version)
            version = await _runner_version(link, runner)
        else:
            version = await link.app_version(runner.bundle_id)
    except DeviceNotReady as error:
        return _not_ready(error.reasons or [error.message])
    installable = runner.ipa_path is not None and runner.ipa_path.exists()
    if not deep and installable:
        pass  # missing or stale, the batch process installs it before its first batch
    elif version is None:
        reasons.append(
            f"runner {runner.bundle_id} is not installed: set ANEFARM_IOS_RUNNER_IPA to its "
            ".ipa (ios-runner/README.md) and the agent installs it"
        )
    elif runner.expected_version and version != runner.expected_version:
        reasons.append(
            f"runner {runner.bundle_id} is version {version}, expected {runner.expected_version}: "
            "point ANEFARM_IOS_RUNNER_IPA at the matching build"
        )
    battery = await link.battery()
    reasons += _health_reasons(battery, limits)
    return Readiness(
        reasons=reasons,
        runner_version=version,
        battery_percent=battery.percent,
        charging=battery.charging,
        temperature_c=battery.temperature_c,
    )


async def _runner_version(link: DeviceLink, runner: RunnerConfig) -> str | None:
    """The installed runner version, installing or upgrading it from the .ipa when possible."""
    version = await link.app_version(runner.bundle_id)
    stale = version is None or (
        runner.expected_version is not None and version != runner.expected_version
    )
    if stale and runner.ipa_path is not None:
        if not runner.ipa_path.exists():
            raise DeviceNotReady(
                f"runner .ipa {runner.ipa_path} does not exist",
                udid=link.udid,
                reasons=[
                    f"runner .ipa {runner.ipa_path} does not exist: fix ANEFARM_IOS_RUNNER_IPA"
                ],
            )
        await link.install(runner.ipa_path)
        version = await link.app_version(runner.bundle_id)
    return version


def _health_reasons(battery: Battery, limits: HealthLimits) -> list[str]:
    reasons = []
    if (
        battery.percent is not None
        and battery.percent < limits.min_battery_percent
        and not battery.charging
    ):
        reasons.append(
            f"battery {battery.percent:.0f}% and not charging: plug the device into a powered hub"
        )
    if battery.temperature_c is not None and battery.temperature_c > limits.max_temperature_c:
        reasons.append(
            f"device temperature {battery.temperature_c:.1f} °C is above the "
            f"{limits.max_temperature_c:.0f} °C limit: let it cool down"
        )
    return reasons


def require_ready(readiness: Readiness, udid: str) -> None:
    if not readiness.ready:
        raise DeviceNotReady(
            f"{udid} is not ready: " + "; ".join(readiness.reasons),
            udid=udid,
            reasons=readiness.reasons,
        )
