"""pymobiledevice3 exceptions translated into anefarm's device errors, with reasons a person can act on.

Every call into pymobiledevice3 goes through :func:`translating`, so nothing from the
library escapes the driver. All device errors are *infra* (retry elsewhere); a model that
fails on the device is reported inside the runner's result, never as an exception here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from pymobiledevice3 import exceptions as pmd3

from orchestrator.errors import AnefarmError, DeviceError, DeviceGone, DeviceNotReady

DEVMODE_REASON = "Developer Mode is off: Settings → Privacy & Security → Developer Mode"
LOCKED_REASON = "device is locked with a passcode: unlock it (farm devices: Auto-Lock → Never)"
TUNNELD_REASON = (
    "iOS 17.0–17.3 reaches developer services only through tunneld: run "
    "`sudo pymobiledevice3 remote tunneld` on this Mac (docs/real-devices.md)"
)


def unpaired_reason(udid: str) -> str:
    return f"not paired with this host: run `anefarm devices pair {udid}`"


def ddi_reason(detail: str) -> str:
    return (
        f"Developer Disk Image is not mounted and mounting failed ({detail}): connect the "
        "Mac to the internet once or run `pymobiledevice3 mounter auto-mount`"
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
)
_GONE = (
    pmd3.ConnectionTerminatedError,
    pmd3.NoDeviceConnectedError,
    pmd3.DeviceNotFoundError,
    pmd3.ConnectionFailedToUsbmuxdError,
    pmd3.TunneldConnectionError,
    pmd3.MuxException,
    asyncio.IncompleteReadError,
    ConnectionError,  # reset / refused / broken pipe on the usbmux stream
)
_NO_DDI = (pmd3.NotMountedError, pmd3.DeveloperDiskImageNotFoundError, pmd3.InvalidServiceError)


def translate(error: BaseException, udid: str, doing: str) -> AnefarmError:
    """The anefarm error for a pymobiledevice3 (or transport) exception raised while ``doing``."""
    if isinstance(error, AnefarmError):
        return error
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, _LOCKED):
        return DeviceNotReady(f"{udid}: {LOCKED_REASON}", udid=udid, reasons=[LOCKED_REASON])
    if isinstance(error, _UNPAIRED):
        reason = unpaired_reason(udid)
        return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
    if isinstance(error, pmd3.DeveloperModeIsNotEnabledError):
        return DeviceNotReady(f"{udid}: {DEVMODE_REASON}", udid=udid, reasons=[DEVMODE_REASON])
    if isinstance(error, pmd3.RSDRequiredError):
        return DeviceNotReady(f"{udid}: {TUNNELD_REASON}", udid=udid, reasons=[TUNNELD_REASON])
    if isinstance(error, _NO_DDI):
        reason = ddi_reason(detail)
        return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
    if isinstance(error, pmd3.AppNotInstalledError):
        reason = f"the runner app is not installed ({detail}): configure its .ipa so the agent installs it"
        return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
    if isinstance(error, pmd3.AppInstallError):
        reason = f"installing the runner failed ({detail}): check its signing profile includes this device"
        return DeviceNotReady(f"{udid}: {reason}", udid=udid, reasons=[reason])
    if isinstance(error, _GONE):
        return DeviceGone(
            f"{udid} went away while {doing}: {detail}",
            udid=udid,
            hint="check the USB cable and hub; the batch is retried on another device",
        )
    return DeviceError(
        f"{udid}: {doing} failed: {type(error).__name__}: {detail}",
        udid=udid,
        hint="the batch is retried on another device; see the agent log for details",
    )


@contextmanager
def translating(udid: str, doing: str) -> Iterator[None]:
    """Re-raise pymobiledevice3 and transport errors as anefarm device errors."""
    try:
        yield
    except AnefarmError:
        raise
    except (pmd3.PyMobileDevice3Exception, OSError, asyncio.IncompleteReadError) as error:
        raise translate(error, udid, doing) from error
