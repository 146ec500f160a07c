"""Real iOS devices on the command line: `anefarm devices pair UDID`, `devices prepare`
(the Developer Disk Images, ahead of any worker), `devices check UDID` (the bring-up
steps), and the rows that `anefarm devices list` shows for USB devices
(``list_ios_devices_json``)."""

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
    _driver()
    from agents.devices.ios import IOSDevice, list_ios_devices

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
        _driver()
        from agents.devices.ios.pairing import pair_device

        name = pair_device(udid, timeout_s=timeout_s)
    except DeviceError as error:
        raise DeviceError(
            error.message, udid=udid, hint="unlock the device, tap Trust, retry"
        ) from error
    typer.echo(f"paired with {name} ({udid})")


def _driver() -> None:
    try:
        import agents.devices.ios  # noqa: F401
    except ImportError as error:  # pymobiledevice3 is the optional "agent" extra
        raise ConfigError(
            f"the iOS driver is not installed ({error.name})",
            hint="pip install 'anefarm[agent]'",
        ) from error


def attached_os_versions(
    *, usbmux_address: str | None = None, pair_records_dir: Path | None = None
) -> dict[str, str]:
    """udid → iOS version of the USB devices here (lockdownd tells it even unpaired)."""
    from agents.devices.ios import list_ios_devices
    from agents.devices.ios.connection import DeviceLink
    from agents.devices.ios.services import Pmd3DeveloperServices

    async def version(udid: str) -> str | None:
        link = DeviceLink(udid, Pmd3DeveloperServices(), usbmux_address=usbmux_address,
                          pair_records_dir=pair_records_dir)  # fmt: skip
        try:
            return (await link.facts()).os_version or None
        except DeviceError:
            return None  # gone or locked: `devices check` says which
        finally:
            await link.drop()

    found = {udid: asyncio.run(version(udid)) for udid in list_ios_devices(usbmux_address)}
    return {udid: os for udid, os in found.items() if os}


def prepare_images(
    versions: list[str],
    *,
    cache: Path | None = None,
    timeout_s: float = 300.0,
    refresh: bool = False,
    usbmux_address: str | None = None,
    pair_records_dir: Path | None = None,
    echo: Callable[[str], None] = typer.echo,
) -> list[Any]:
    """Fetch and cache the disk images for ``versions``, or for the attached devices' iOS."""
    _driver()
    from agents.devices.ios import ddi

    if not versions:
        try:
            attached = attached_os_versions(
                usbmux_address=usbmux_address, pair_records_dir=pair_records_dir
            )
        except DeviceError:  # no usbmuxd here (a Linux box preparing a cache to copy)
            attached = {}
        if not attached:
            raise UsageError(
                "no --ios version given and no device attached whose iOS can be read",
                hint="name them: anefarm devices prepare --ios 16.7 --ios 17.4",
            )
        for udid, version in sorted(attached.items()):
            echo(f"{udid}: iOS {version}")
        versions = list(attached.values())
    for version in versions:
        try:
            ddi.image_for(version)  # a bad version is refused before any download
        except ConfigError as error:
            raise UsageError(error.message, hint=error.hint) from error
    if timeout_s <= 0:
        raise UsageError(f"--timeout must be positive, not {timeout_s:g}")
    target = cache or ddi.default_cache_dir()
    return ddi.prepare(target, versions, timeout_s=timeout_s, echo=echo, refresh=refresh)


def devices_prepare(
    ios: Annotated[
        list[str] | None,
        typer.Option(
            "--ios", help="iOS version (16.7, 17.4); repeat it; default: the attached devices'"
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="Cache folder (default: <agent cache dir>/ddi, where the agent looks)"
        ),
    ] = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Seconds allowed for each image's download")
    ] = 300.0,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Download anefarm's cached images again")
    ] = False,
) -> None:
    """Download the Developer Disk Images this Mac's devices need, once, before the agent runs."""
    prepared = prepare_images(list(ios or []), cache=cache, timeout_s=timeout_s, refresh=refresh)
    fetched = sum(1 for item in prepared if item.downloaded)
    typer.echo(f"ready: {len(prepared)} image(s) on this host, {fetched} downloaded now")


def check_device(
    udid: str,
    settings: Settings,
    *,
    usbmux_address: str | None = None,
    pair_records_dir: Path | None = None,
    developer_services: Callable[[str], Any] | None = None,
    ddi_cache: Path | None = None,
    launch: bool = False,
    echo: Callable[[str], None] = typer.echo,
) -> list[Any]:
    """Walk the bring-up steps of ``udid``, printing each as it is checked; the steps."""
    _driver()
    from agents.devices.ios import HealthLimits, RunnerConfig, bringup, ddi
    from agents.devices.ios.connection import DeviceLink
    from agents.devices.ios.services import Pmd3DeveloperServices, load_services_factory

    if developer_services is not None:
        services = developer_services(udid)
    elif settings.ios_developer_services:  # the bring-up hook, as the agent would use it
        services = load_services_factory(settings.ios_developer_services)(udid)
        echo(f"note: developer services from ANEFARM_IOS_DEVELOPER_SERVICES="
             f"{settings.ios_developer_services} (tests and bring-up only: results are SIMULATED)")  # fmt: skip
    else:
        services = Pmd3DeveloperServices()
    runner = RunnerConfig(bundle_id=settings.ios_runner_bundle_id,
                          expected_version=settings.ios_runner_version,
                          ipa_path=settings.ios_runner_ipa)  # fmt: skip
    limits = HealthLimits(min_battery_percent=settings.ios_min_battery_percent,
                          max_temperature_c=settings.ios_max_temperature_c)  # fmt: skip
    link = DeviceLink(udid, services, usbmux_address=usbmux_address,
                      pair_records_dir=pair_records_dir)  # fmt: skip

    async def walk() -> list[Any]:
        steps = []
        try:
            async for step in bringup.walk(link, runner=runner, limits=limits,
                                           ddi_cache=ddi_cache or ddi.default_cache_dir(),
                                           launch=launch):  # fmt: skip
                steps.append(step)
                echo(f"{step.status:<5} {step.name:<19} {step.detail}")
                if step.fix:
                    echo(f"{'':<5} {'':<19} fix: {step.fix}")
        finally:
            await link.drop()
        return steps

    return asyncio.run(walk())


def devices_check(
    udid: Annotated[str, typer.Argument(help="UDID from `anefarm devices list`")],
    launch: Annotated[
        bool, typer.Option("--launch", help="Also launch the runner once (it measures nothing)")
    ] = False,
) -> None:
    """Walk the bring-up steps of one device, stop at the first blocking failure and say the fix.

    Steps: USB, pairing, Developer Mode, tunnel, disk image, runner, health (--launch also
    launches the runner once). Exit 0 when every step is ok, 1 otherwise."""
    from orchestrator.settings import load_settings

    if not udid.strip():
        raise UsageError("a UDID is required", hint="see `anefarm devices list`")
    steps = check_device(udid, load_settings(), launch=launch)
    failed = [step for step in steps if step.failed]
    if failed:
        first = failed[0]
        raise DeviceNotReady(
            f"{udid} failed the bring-up check at {first.name}: {first.detail}",
            udid=udid,
            reasons=[f"{step.name}: {step.detail}" for step in failed],
            hint=first.fix or "see the lines above",
        )
    typer.echo(f"all {len(steps)} steps ok: start the agent (`anefarm agent --ios`)")


def register(app: typer.Typer) -> None:
    from orchestrator.cli.groups import devices_app

    devices_app.command("pair")(devices_pair)
    devices_app.command("prepare")(devices_prepare)
    devices_app.command("check")(devices_check)
