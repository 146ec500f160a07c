"""`anefarm devices check UDID`: the bring-up steps of one device, in the order a person
fixes them, each with ok / FAIL and the fix (docs/real-devices.md, "Bring-up checklist").

Built on the driver's own pieces (DeviceLink, the readiness wording, the DDI cache), so
what this prints is what the agent will meet. It stops at the first blocking failure:
nothing after an unpaired device, say, can be read at all. Unlike the agent it installs
nothing; it does mount the Developer Disk Image from the cache, as the agent would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agents.devices.ios import ddi
from agents.devices.ios.connection import DeviceLink
from agents.devices.ios.discovery import _usb_serials
from agents.devices.ios.errors import DEVMODE_REASON, TUNNELD_REASON, translating, unpaired_reason
from agents.devices.ios.readiness import HealthLimits, RunnerConfig, _health_reasons
from agents.devices.ios.versions import RSD_MIN, USERSPACE_TUNNEL_MIN, os_tuple
from orchestrator.errors import DeviceError, DeviceGone

OK, WARN, FAIL = "ok", "warn", "FAIL"
# The batch a check launch names: never in the runner's inbox, so it measures nothing.
CHECK_BATCH = "anefarm-bringup-check"


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # ok | warn (goes on) | FAIL (the device cannot run batches)
    detail: str
    fix: str | None = None
    blocking: bool = False  # a FAIL that makes the later steps meaningless

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def transport(os_version: str) -> str:
    """How developer services reach a device on ``os_version`` (docs/real-devices.md §4)."""
    version = os_tuple(os_version)
    if version < RSD_MIN:
        return "lockdown (below iOS 17: no tunnel)"
    if version < USERSPACE_TUNNEL_MIN:
        return "tunneld (iOS 17.0–17.3: the root daemon builds the tunnel)"
    return "userspace tunnel (iOS 17.4+: the agent opens it, no root)"


def _reason(error: DeviceError) -> str:
    reasons = getattr(error, "reasons", None) or [error.message]
    return "; ".join(reasons)


def _split(reason: str) -> tuple[str, str | None]:
    """'what: what to do' → (what, what to do): the driver's reasons are worded so. The
    last ': ' outside parentheses separates them (a detail in parentheses may hold one)."""
    depth, cut = 0, -1
    for index, char in enumerate(reason):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and reason.startswith(": ", index):
            cut = index
    return (reason[:cut], reason[cut + 2 :]) if cut >= 0 else (reason, None)


def _fix(reason: str) -> str:
    return _split(reason)[1] or reason


async def walk(
    link: DeviceLink,
    *,
    runner: RunnerConfig,
    limits: HealthLimits,
    ddi_cache: Path,
    launch: bool = False,
) -> AsyncIterator[Step]:
    """The steps for ``link``'s device, yielded as they are checked; the last one is the
    first blocking FAIL, if any. DeviceGone mid-way ends the walk with a FAIL too.
    ``launch`` adds a launch of the runner (killed at once) after the runner step."""
    udid = link.udid
    try:
        async for step in _steps(link, runner, limits, ddi_cache, launch):
            yield step
            if step.failed and step.blocking:
                return
    except DeviceGone as error:
        yield Step("usbmuxd", FAIL, f"lost the device: {error.message}",
                   "check the cable and the hub, then run the check again", blocking=True)  # fmt: skip
    except DeviceError as error:
        what, fix = _split(_reason(error))
        yield Step("device", FAIL, what, fix or f"see `anefarm devices list` for {udid}", True)


async def _steps(
    link: DeviceLink, runner: RunnerConfig, limits: HealthLimits, ddi_cache: Path, launch: bool
) -> AsyncIterator[Step]:
    udid = link.udid
    yield await _seen_over_usb(link)

    try:
        facts = await link.facts()
        paired = await link.paired()
    except DeviceError as error:  # locked, or pairing refused outright
        what, fix = _split(_reason(error))
        yield Step("pairing", FAIL, what, fix, blocking=True)
        return
    if not paired:
        yield Step("pairing", FAIL, "not paired with this host",
                   _fix(unpaired_reason(udid)) + " and tap Trust on the device", blocking=True)  # fmt: skip
        return
    yield Step(
        "pairing", OK, f"paired: {facts.name or '?'} ({facts.product_type}, iOS {facts.os_version})"
    )

    os_version = facts.os_version
    if not await link.developer_mode(os_version):
        yield Step("developer mode", FAIL, "off", _fix(DEVMODE_REASON) + ", restart, confirm", True)
        return
    yield Step(
        "developer mode", OK, "on" if os_tuple(os_version) >= (16, 0) else "not needed below iOS 16"
    )

    version = os_tuple(os_version)
    yield Step("iOS", OK, f"{os_version} → developer services over {transport(os_version)}")

    key = ddi.image_for(os_version)
    found = ddi.locate(ddi_cache, key)
    if found is None:
        yield Step("disk image", FAIL, f"the {key.label} is not on this host",
                   f"run `{ddi.prepare_command(key, os_version)}`; it needs internet access once", blocking=True)  # fmt: skip
        return
    yield Step("disk image", OK, f"{key.label} in {found.where}: {found.paths[0].parent}")

    try:
        # Opens the tunnel (17+) and mounts the image from the cache, as the agent does.
        await link.developer(os_version)
    except DeviceError as error:
        in_tunneld_range = RSD_MIN <= version < USERSPACE_TUNNEL_MIN
        # On 17.0–17.3 a tunneld that is not running can look like a device gone (issue 14 §5).
        via_tunneld = in_tunneld_range and (
            isinstance(error, DeviceGone) or "tunneld" in _reason(error)
        )
        if isinstance(error, DeviceGone) and not via_tunneld:
            raise
        what, fix = _split(TUNNELD_REASON if via_tunneld else _reason(error))
        if via_tunneld and "tunneld" not in _reason(error):
            what = f"{what} ({_reason(error)})"
        yield Step("developer services", FAIL, what, fix, blocking=True)
        return
    yield Step("developer services", OK, "Developer Disk Image mounted, services reachable")

    runner_step = await _runner_step(link, runner)
    yield runner_step
    if launch and runner_step.status == OK:
        yield await _launch_step(link, runner, os_version)
    yield await _health_step(link, limits)


async def _seen_over_usb(link: DeviceLink) -> Step:
    from pymobiledevice3.usbmux import list_devices

    try:
        with translating("usbmuxd", "listing devices"):
            serials = _usb_serials(list(await list_devices(usbmux_address=link.usbmux_address)))
    except DeviceGone as error:
        detail = error.message.partition("listing devices: ")[2] or error.message
        return Step("usbmuxd", FAIL, f"usbmuxd is not reachable ({detail})",
                    "on a Mac usbmuxd always runs: unset USBMUXD_SOCKET_ADDRESS or fix it",
                    blocking=True)  # fmt: skip
    if link.udid not in serials:
        others = ", ".join(sorted(serials)) or "none"
        return Step("usbmuxd", FAIL, f"{link.udid} is not attached over USB (attached: {others})",
                    "plug it in with a data cable, unlock it; `anefarm devices list` shows the UDIDs",
                    blocking=True)  # fmt: skip
    return Step("usbmuxd", OK, "attached over USB")


async def _runner_step(link: DeviceLink, runner: RunnerConfig) -> Step:
    version = await link.app_version(runner.bundle_id)
    ipa = runner.ipa_path
    installable = ipa is not None and ipa.exists()
    if version is not None and (runner.expected_version in (None, version)):
        return Step("runner", OK, f"{runner.bundle_id} version {version} installed")
    what = (
        f"{runner.bundle_id} is not installed"
        if version is None
        else f"{runner.bundle_id} is version {version}, expected {runner.expected_version}"
    )
    if installable:
        return Step("runner", WARN, what, f"the agent installs {ipa} when it starts")
    if ipa is not None:
        return Step("runner", FAIL, what, f"ANEFARM_IOS_RUNNER_IPA={ipa} does not exist: fix it")
    return Step("runner", FAIL, what,
                "build it (ios-runner/README.md) and set ANEFARM_IOS_RUNNER_IPA to the .ipa")  # fmt: skip


async def _launch_step(link: DeviceLink, runner: RunnerConfig, os_version: str) -> Step:
    """Launch the runner as a batch does (DVT process control) and kill it: the first run
    meets an untrusted developer profile or a refused launch here, not in a batch."""
    provider = await link.developer(os_version)
    try:
        with translating(link.udid, f"launching {runner.bundle_id}"):
            async with link.services.process_control(provider) as control:
                pid = await control.launch(
                    runner.bundle_id,
                    arguments=["--batch", CHECK_BATCH],
                    kill_existing=True,
                    environment={"ANEFARM_BATCH_ID": CHECK_BATCH},
                )
                await control.kill(pid)
    except DeviceGone:
        raise
    except DeviceError as error:
        what, fix = _split(_reason(error))
        return Step("launch", FAIL, what, fix)
    return Step("launch", OK, f"{runner.bundle_id} launched (pid {pid}) and stopped")


async def _health_step(link: DeviceLink, limits: HealthLimits) -> Step:
    battery = await link.battery()
    percent = "?" if battery.percent is None else f"{battery.percent:.0f}%"
    charging = {True: "charging", False: "not charging", None: "charging unknown"}[battery.charging]
    temperature = "?" if battery.temperature_c is None else f"{battery.temperature_c:.1f} °C"
    detail = f"battery {percent} {charging}, {temperature}"
    problems = [_split(reason) for reason in _health_reasons(battery, limits)]
    if problems:
        whats = "; ".join(what for what, _ in problems)
        fixes = "; ".join(fix for _, fix in problems if fix)
        return Step("health", FAIL, f"{detail}: {whats}", fixes or None)
    return Step("health", OK, detail)
