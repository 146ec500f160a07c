"""pymobiledevice3 exceptions translated into anefarm's device errors, with reasons a person can act on.

Every call into pymobiledevice3 goes through :func:`translating`, so nothing from the
library escapes the driver. All device errors are *infra* (retry elsewhere); a model that
fails on the device is reported inside the runner's result, never as an exception here.

pymobiledevice3 does not raise only its own ``PyMobileDevice3Exception``: a DTX (Instruments)
reply carrying an NSError is a plain ``DTXNsError``, a launch that returns pid 0 is an
``AssertionError`` (``ProcessControl.launch`` asserts the pid), a broken DTX stream is a
``DTXProtocolError``, Developer Disk Image downloads raise ``developer_disk_image`` and
``requests`` exceptions, and a stale tunneld entry an ``IndexError``
(``get_tunneld_device_by_udid`` indexes an empty list). So :func:`translating` takes any
``Exception`` — never a ``BaseException`` such as ``CancelledError`` — and an exception
nobody foresaw still becomes a DeviceError that names its type.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymobiledevice3 import exceptions as pmd3
from pymobiledevice3.dtx.exceptions import DTXNSCodingError, DTXNsError, DTXProtocolError

from orchestrator.errors import AnefarmError, DeviceError, DeviceGone, DeviceNotReady

DEVMODE_REASON = "Developer Mode is off: Settings → Privacy & Security → Developer Mode"
LOCKED_REASON = "device is locked with a passcode: unlock it (farm devices: Auto-Lock → Never)"
TUNNELD_REASON = (
    "iOS 17.0–17.3 reaches developer services only through tunneld: run "
    "`sudo pymobiledevice3 remote tunneld` on this Mac (docs/real-devices.md)"
)
TUNNELD_STALE_REASON = (
    "tunneld lists a tunnel to this device that no longer answers: restart tunneld "
    "(`sudo pymobiledevice3 remote tunneld`) or unplug and replug the device"
)
UNTRUSTED_REASON = (
    "the runner's developer profile is not trusted on this device: Settings → General → "
    "VPN & Device Management → trust the developer (or the runner's signature does not "
    "cover this device: rebuild it, ios-runner/README.md)"
)
LAUNCH_REFUSED_REASON = (
    "the device refused to launch the runner without saying why (pid 0): unlock it and "
    "trust the developer profile (Settings → General → VPN & Device Management)"
)


def unpaired_reason(udid: str) -> str:
    return f"not paired with this host: run `anefarm devices pair {udid}`"


def ddi_reason(detail: str) -> str:
    return (
        f"Developer Disk Image is not mounted and mounting failed ({detail}): run "
        "`anefarm devices prepare` on this Mac (docs/real-devices.md)"
    )


def ddi_download_reason(detail: str) -> str:
    return (
        f"Developer Disk Image could not be downloaded or personalised ({detail}): give this "
        "Mac internet access (GitHub; Apple's signing server for iOS 17+), then run "
        "`anefarm devices prepare` (docs/real-devices.md)"
    )


# Order matters: PasswordRequiredError is a PairingError subclass, so locked comes first.
_LOCKED = (pmd3.PasswordRequiredError, pmd3.PasscodeRequiredError)
_UNPAIRED = (
    pmd3.NotPairedError,
    pmd3.PairingDialogResponsePendingError,
    pmd3.UserDeniedPairingError,
    pmd3.InvalidHostIDError,
    pmd3.FatalPairingError,
    pmd3.PairingError,
    pmd3.NotTrustedError,
)
_GONE = (
    pmd3.ConnectionTerminatedError,
    pmd3.NoDeviceConnectedError,
    pmd3.DeviceNotFoundError,
    pmd3.ConnectionFailedToUsbmuxdError,
    pmd3.MuxException,
    asyncio.IncompleteReadError,
    ConnectionError,  # reset / refused / broken pipe on the usbmux stream
)
_NO_DDI = (
    pmd3.NotMountedError,
    pmd3.DeveloperDiskImageNotFoundError,
    pmd3.InvalidServiceError,
    pmd3.NoSuchBuildIdentityError,
)
# What SpringBoard says (in the NSError of a failed DVT launch) when it refuses to open the
# runner: FBSOpenApplicationErrorDomain's BSErrorCodeDescription "Locked" ("…because the
# device was not, or could not be, unlocked") or "Security" ("…invalid code signature,
# inadequate entitlements or its profile has not been explicitly trusted by the user").
_NSERROR_CODES = {"Locked": "locked", "DeviceLocked": "locked", "Security": "untrusted"}
_NSERROR_LOCKED = re.compile(r"could not be, unlocked|for reason: Locked|device is locked", re.I)
_NSERROR_UNTRUSTED = re.compile(
    r"not been explicitly trusted|for reason: Security|invalid code signature", re.I
)


def translate(error: BaseException, udid: str, doing: str) -> AnefarmError:
    """The anefarm error for a pymobiledevice3 (or transport) exception raised while ``doing``."""
    if isinstance(error, AnefarmError):
        return error
    detail = _first_line(error)
    reason = _reason(error, udid, detail)
    if reason is not None:
        return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
    if isinstance(error, _GONE):
        return DeviceGone(
            f"{udid} went away while {doing}: {detail}",
            udid=udid,
            hint="check the USB cable and hub; the batch is retried on another device",
        )
    if isinstance(error, DTXNsError | DTXProtocolError | DTXNSCodingError):
        # The developer connection is in an unknown state: the driver drops it, the next
        # batch reconnects.
        return DeviceError(
            f"{udid}: {doing} failed: the device's developer service answered "
            f"{type(error).__name__}: {detail}",
            udid=udid,
            hint="the batch is retried on another device; the developer connection is reopened",
        )
    return DeviceError(
        f"{udid}: {doing} failed: {type(error).__name__}: {detail}",
        udid=udid,
        hint="the batch is retried on another device; see the agent log for details",
    )


def _reason(error: BaseException, udid: str, detail: str) -> str | None:
    """The reason a person can act on, when ``error`` has one (the device is not ready)."""
    if isinstance(error, _LOCKED):
        return LOCKED_REASON
    if isinstance(error, _UNPAIRED):
        return unpaired_reason(udid)
    if isinstance(error, pmd3.DeveloperModeIsNotEnabledError):
        return DEVMODE_REASON
    if isinstance(error, pmd3.RSDRequiredError | pmd3.TunneldConnectionError):
        return TUNNELD_REASON
    if isinstance(error, IndexError) and _raised_in(error, module="tunneld"):
        return TUNNELD_STALE_REASON
    if isinstance(error, DTXNsError):
        return _nserror_reason(error)
    if isinstance(error, AssertionError) and _raised_in(error, function="launch"):
        return LAUNCH_REFUSED_REASON
    if _is_ddi_download(error):
        return ddi_download_reason(detail)
    if isinstance(error, pmd3.PyMobileDevice3Exception) and "DeviceLocked" in str(error):
        # mobile_image_mounter answers {"Error": "DeviceLocked"} to a mount on a locked
        # device (libimobiledevice's ideviceimagemounter says "Device is locked, can't
        # mount"); pymobiledevice3 11.45 only wraps that answer in its message.
        return LOCKED_REASON
    if isinstance(error, _NO_DDI):
        return ddi_reason(detail)
    if isinstance(error, pmd3.AppNotInstalledError):
        return f"the runner app is not installed ({detail}): configure its .ipa so the agent installs it"
    if isinstance(error, pmd3.AppInstallError):
        return f"installing the runner failed ({detail}): check its signing profile includes this device"
    return None


def _nserror_reason(error: DTXNsError) -> str | None:
    strings = list(_strings(error.error))
    text = " ".join(strings)
    codes = {_NSERROR_CODES[s] for s in strings if s in _NSERROR_CODES}
    if "locked" in codes or _NSERROR_LOCKED.search(text):
        return LOCKED_REASON
    if "untrusted" in codes or _NSERROR_UNTRUSTED.search(text):
        return UNTRUSTED_REASON
    return None


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string in an NSError: domain, user info, and underlying errors (nested NSErrors
    decode as objects with ``domain``/``user_info``, user info as dicts and lists)."""
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, depth + 1)
            yield from _strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, depth + 1)
    elif hasattr(value, "domain"):
        yield str(value.domain)
        yield from _strings(getattr(value, "user_info", None), depth + 1)


def _raised_in(error: BaseException, *, module: str = "", function: str = "") -> bool:
    """Whether the innermost frame of ``error`` is in a module path containing ``module``
    (a path component) or a function named ``function``: an IndexError or AssertionError
    means something only where pymobiledevice3 raises it on purpose."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    if module and f"/{module}/" not in last.filename.replace("\\", "/"):
        return False
    return not function or last.name == function


def _is_ddi_download(error: BaseException) -> bool:
    # developer_disk_image (the DDI repository client) raises DeveloperDiskImageException and
    # its GithubRateLimitExceededError; requests raises its own (a ConnectionError of requests
    # is an OSError but not a builtin ConnectionError). Only DDI downloads (and their TSS
    # personalisation) use HTTP in the driver, so any requests error is one of them.
    module = type(error).__module__.split(".")[0]
    return module in {"developer_disk_image", "requests", "urllib3"}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def translating(udid: str, doing: str) -> Iterator[None]:
    """Re-raise whatever the library raises as an anefarm device error (AnefarmErrors pass;
    BaseExceptions such as CancelledError and KeyboardInterrupt are never caught)."""
    try:
        yield
    except AnefarmError:
        raise
    except Exception as error:
        raise translate(error, udid, doing) from error
