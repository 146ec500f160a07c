"""Every exception a real device can raise through pymobiledevice3 ends as an anefarm device
error with a reason a person can act on (issue 14, item 4). Each exception here is raised
by the installed library's own code where that is possible (ProcessControl.launch's
assert, get_tunneld_device_by_udid's index), not merely constructed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import requests
from developer_disk_image.exceptions import (
    DeveloperDiskImageException,
    GithubRateLimitExceededError,
)
from pymobiledevice3 import exceptions as pmd3
from pymobiledevice3.dtx.exceptions import DTXNsError, DTXProtocolError
from pymobiledevice3.dtx.ns_types import NSError
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
from pymobiledevice3.tunneld import api as tunneld_api

from agents.devices.ios.errors import (
    LAUNCH_REFUSED_REASON,
    LOCKED_REASON,
    TUNNELD_REASON,
    TUNNELD_STALE_REASON,
    UNTRUSTED_REASON,
    translating,
)
from orchestrator.errors import DeviceError, DeviceGone, DeviceNotReady, RunnerTimeout
from tests.ios.conftest import UDID, DeviceFactory
from tests.ios.fake_developer import launch_refused
from tests.ios.test_driver import manifest_for

UNTRUSTED_WHY = "its profile has not been explicitly trusted by the user"


def _raised(error: BaseException) -> BaseException:
    """``error`` as translating() sees it: raised, with a traceback."""
    with pytest.raises(BaseException) as caught, translating(UDID, "launching the runner"):
        raise error
    return caught.value


def _not_ready_reason(error: BaseException) -> str:
    assert isinstance(error, DeviceNotReady), repr(error)
    assert error.udid == UDID and error.infra and len(error.reasons) == 1
    return error.reasons[0]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (launch_refused("org.anefarm.runner", "Locked", "the device was locked"), LOCKED_REASON),
        (launch_refused("org.anefarm.runner", "Security", UNTRUSTED_WHY), UNTRUSTED_REASON),
        (pmd3.PasswordRequiredError(), LOCKED_REASON),
        (pmd3.PyMobileDevice3Exception("mount failed: {'Error': 'DeviceLocked'}"), LOCKED_REASON),
        (pmd3.TunneldConnectionError(), TUNNELD_REASON),
    ],
    ids=["dtx-locked", "dtx-untrusted", "password", "mount-locked", "no-tunneld"],
)
def test_refusals_become_not_ready_with_what_to_do(error: Exception, reason: str) -> None:
    assert _not_ready_reason(_raised(error)) == reason


@pytest.mark.parametrize(
    "error",
    [
        DeveloperDiskImageException("HTTP 500 from raw.githubusercontent.com"),
        GithubRateLimitExceededError("rate limit exceeded, resets at 12:00"),
        requests.ConnectionError("Max retries exceeded with url"),
    ],
    ids=["ddi-http", "ddi-rate-limit", "no-network"],
)
def test_disk_image_download_failures_say_to_prepare_the_images(error: Exception) -> None:
    reason = _not_ready_reason(_raised(error))
    assert "`anefarm devices prepare`" in reason and str(error).split(",")[0] in reason


def test_a_launch_that_returns_pid_0_is_a_refused_launch() -> None:
    class Service:  # the DVT channel of a device that launched nothing
        async def launch_suspended_process_with_device_path_bundle_identifier_environment_arguments_options_(
            self, *args: Any
        ) -> int:
            return 0

    control = ProcessControl(None, Service())  # type: ignore[arg-type]

    async def launch() -> None:
        with translating(UDID, "launching the runner"):
            await control.launch("org.anefarm.runner")

    with pytest.raises(DeviceNotReady) as caught:
        asyncio.run(launch())
    assert caught.value.reasons == [LAUNCH_REFUSED_REASON]
    assert isinstance(caught.value.__cause__, AssertionError)  # pymobiledevice3's own assert


def test_a_stale_tunneld_entry_says_to_restart_tunneld(monkeypatch: pytest.MonkeyPatch) -> None:
    # tunneld lists the device, but its tunnel no longer answers: no RSD comes back.
    monkeypatch.setattr(tunneld_api, "_list_tunnels", lambda address: {UDID: [{"x": 1}]})

    async def no_rsds(*args: Any) -> list[Any]:
        return []

    monkeypatch.setattr(tunneld_api, "_create_rsds_from_tunnels", no_rsds)

    async def connect() -> None:
        with translating(UDID, "opening the developer-service connection"):
            await tunneld_api.get_tunneld_device_by_udid(UDID)

    with pytest.raises(DeviceNotReady) as caught:
        asyncio.run(connect())
    assert caught.value.reasons == [TUNNELD_STALE_REASON]
    assert isinstance(caught.value.__cause__, IndexError)


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (DTXNsError(NSError(1, "DTXMessage", {"NSLocalizedDescription": "no"})), "DTXNsError"),
        (DTXProtocolError("Duplicate first fragment for message 7"), "DTXProtocolError"),
        (IndexError("list index out of range"), "IndexError"),  # not from tunneld
        (AssertionError("some invariant"), "AssertionError"),  # not from a launch
        (ValueError("what nobody foresaw"), "ValueError"),
        (KeyError("Port"), "KeyError"),
    ],
)
def test_anything_else_is_a_device_error_naming_its_type(error: Exception, named: str) -> None:
    translated = _raised(error)
    assert type(translated) is DeviceError, repr(translated)
    assert named in translated.message and translated.udid == UDID and translated.infra
    assert translated.__cause__ is error


def test_transport_errors_are_still_device_gone() -> None:
    assert isinstance(_raised(pmd3.ConnectionTerminatedError()), DeviceGone)
    assert isinstance(_raised(asyncio.IncompleteReadError(b"", 4)), DeviceGone)


@pytest.mark.parametrize("error", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(3)])
def test_cancellation_and_interrupts_are_never_swallowed(error: BaseException) -> None:
    assert _raised(error) is error


def test_anefarm_errors_pass_through_unchanged() -> None:
    error = RunnerTimeout("no result", udid=UDID)
    assert _raised(error) is error


def test_an_untrusted_runner_profile_fails_the_run_with_the_fix(
    ios_device: DeviceFactory, tmp_path: Path
) -> None:
    model = tmp_path / "tiny.mlmodel"
    model.write_bytes(b"the fake runner never parses it")
    device, fake, services = ios_device(profile_trusted=False)
    with pytest.raises(DeviceNotReady) as caught:
        device.run(manifest_for(model), model, timeout_s=10)
    assert caught.value.reasons == [UNTRUSTED_REASON]
    assert services.launched == [] and fake.container == {}  # refused, and cleaned up
