"""The developer-service fakes must keep the installed pymobiledevice3 signatures: an
upgrade that renames a parameter or changes a default fails here, not on a device. The
fakes that agent worker processes load (fake_shared.py) hand out the same checked classes."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.crash_reports import CrashReportsManager
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

from agents.devices.ios.services import (
    ContainerFiles,
    CrashReports,
    Pmd3DeveloperServices,
    ProcessLauncher,
)
from tests.ios.fake_developer import (
    FakeContainer,
    FakeCrashReports,
    FakeDeveloperServices,
    FakeProcessControl,
)
from tests.ios.fake_shared import DeviceView, UsbmuxFakeDeveloperServices

PAIRS = [
    (FakeContainer, AfcService, ["makedirs", "push", "set_file_contents", "get_file_contents",
                                 "exists", "rm", "close"]),
    (FakeProcessControl, ProcessControl, ["launch", "kill",
                                          "process_identifier_for_bundle_identifier"]),
    (FakeCrashReports, CrashReportsManager, ["ls", "pull", "flush"]),
]  # fmt: skip


def _members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


def _shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    function = inspect.unwrap(function)
    parameters = list(inspect.signature(function).parameters.values())[1:]  # drop self
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize(
    ("fake", "real", "method"),
    [(fake, real, method) for fake, real, methods in PAIRS for method in methods],
)
def test_fake_matches_installed_pymobiledevice3(fake: type, real: type, method: str) -> None:
    real_method = getattr(real, method)
    assert inspect.iscoroutinefunction(inspect.unwrap(real_method)), f"{real.__name__}.{method}"
    assert inspect.iscoroutinefunction(getattr(fake, method))
    assert _shape(getattr(fake, method)) == _shape(real_method)
    # A fake that binds its calls against a real signature (tests/ios/mirror.py) has that
    # signature by construction: it must be this installed method's.
    mirrored = getattr(getattr(fake, method), "mirrors", None)
    assert mirrored in (None, inspect.unwrap(real_method))


PROTOCOLS = [(ContainerFiles, AfcService), (ProcessLauncher, ProcessControl),
             (CrashReports, CrashReportsManager)]  # fmt: skip


@pytest.mark.parametrize(
    ("seam", "real", "method"),
    [(seam, real, method) for seam, real in PROTOCOLS for method in sorted(_members(seam))],
)
def test_the_drivers_protocols_match_installed_pymobiledevice3(
    seam: type, real: type, method: str
) -> None:
    """The driver is typed against these protocols (agents/devices/ios/services.py): a
    parameter pymobiledevice3 renames or a default it changes fails here."""
    assert _shape(getattr(seam, method)) == _shape(getattr(real, method))


def test_a_mirrored_fake_takes_and_refuses_what_the_real_method_does() -> None:
    control = FakeProcessControl(cast(FakeDeveloperServices, SimpleNamespace(device=None)))
    with pytest.raises(TypeError, match="kill_existing_too"):
        asyncio.run(control.launch("app", kill_existing=True, kill_existing_too=False))
    with pytest.raises(TypeError, match="bundle_id"):
        asyncio.run(control.launch())


def test_a_changed_signature_would_be_noticed() -> None:
    async def renamed(self: object, path: str) -> None: ...

    assert _shape(renamed) != _shape(AfcService.makedirs)


SEAM = ["container", "process_control", "crash_reports", "syslog", "keep_awake",
        "mount_developer_image", "open_rsd", "close_rsd"]  # fmt: skip


@pytest.mark.parametrize("fake", [FakeDeveloperServices, UsbmuxFakeDeveloperServices])
@pytest.mark.parametrize("method", SEAM)
def test_fake_services_match_the_real_seam(fake: type, method: str) -> None:
    assert _shape(getattr(fake, method)) == _shape(getattr(Pmd3DeveloperServices, method))


def test_worker_side_fakes_hand_out_the_checked_classes(tmp_path: Path) -> None:
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "state.json").write_text(json.dumps({"apps": {"app": {}}}))
    services = UsbmuxFakeDeveloperServices(DeviceView(tmp_path, "X"))

    async def opened() -> list[type]:
        provider: Any = None
        async with (
            services.container(provider, "app") as files,
            services.process_control(provider) as control,
            services.crash_reports(provider) as reports,
        ):
            return [type(files), type(control), type(reports)]

    assert asyncio.run(opened()) == [FakeContainer, FakeProcessControl, FakeCrashReports]
