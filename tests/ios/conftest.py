"""Fixtures: a fake usbmuxd per test, fake devices on it, IOSDevice drivers over them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.devices.ios import IOSDevice, RunnerConfig
from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

RUNNER = "org.anefarm.runner"
UDID = "00008020-000A11112222333E"


@pytest.fixture
def fake_mux() -> Iterator[FakeUsbmuxd]:
    # Unix socket paths are limited to ~104 bytes: pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="mux", dir="/tmp"))
    server = FakeUsbmuxd(directory / "usbmuxd").start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A model file for the fake runner, which never parses it (the driver only hashes
    and pushes it). Agent tests that convert a real sample define their own."""
    path = tmp_path / "tiny.mlmodel"
    path.write_bytes(b"not really protobuf, the fake runner never parses it")
    return path


def run_cli(*args: str) -> int:
    """`anefarm ARGS` in this process (so fakes set up here are seen); its exit code."""
    from orchestrator.cli import main

    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def runner_app(version: str = "7") -> dict[str, dict[str, Any]]:
    return {RUNNER: {"CFBundleIdentifier": RUNNER, "CFBundleVersion": version}}


DeviceFactory = Callable[..., tuple[IOSDevice, FakeIPhone, FakeDeveloperServices]]


@pytest.fixture
def ios_device(fake_mux: FakeUsbmuxd, tmp_path: Path) -> Iterator[DeviceFactory]:
    made: list[IOSDevice] = []

    def make(
        udid: str = UDID,
        *,
        runner: RunnerConfig | None = None,
        simulated: bool = True,
        **state: Any,
    ) -> tuple[IOSDevice, FakeIPhone, FakeDeveloperServices]:
        state.setdefault("apps", runner_app())
        fake = fake_mux.attach(FakeIPhone(udid, **state))
        services = FakeDeveloperServices(fake_mux, fake)
        device = IOSDevice(
            udid,
            runner=runner or RunnerConfig(bundle_id=RUNNER, expected_version="7"),
            services=services,
            usbmux_address=fake_mux.address,
            pair_records_dir=tmp_path / "pair-records",
            reboot_timeout_s=10.0,
            simulated=simulated,
        )
        made.append(device)
        return device, fake, services

    yield make
    for device in made:
        device.close()
