"""The developer-services hook (ANEFARM_IOS_DEVELOPER_SERVICES) and the fakes it loads for
agent worker processes: state shared through directories, detachment read from usbmuxd."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agents.devices.ios import IOSDevice
from agents.devices.ios.services import load_services_factory
from orchestrator.cli.devices_ios import list_ios_devices_json
from orchestrator.errors import ConfigError, DeviceGone
from orchestrator.settings import load_settings
from tests.ios.conftest import UDID, runner_app
from tests.ios.fake_shared import (
    DIR_ENV,
    HOOK,
    DirectoryFiles,
    SharedFakeIPhone,
)
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd
from tests.ios.test_driver import manifest_for


@pytest.fixture
def shared(
    fake_mux: FakeUsbmuxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[IOSDevice, SharedFakeIPhone]:
    """A shared fake device and an IOSDevice built the way the agent's worker builds it."""
    root = tmp_path / "devices"
    monkeypatch.setenv(DIR_ENV, str(root))
    monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", fake_mux.address)
    fake = fake_mux.attach(SharedFakeIPhone(UDID, root=root, apps=runner_app()))
    settings = load_settings(home=tmp_path, ios_developer_services=HOOK, ios_runner_version="7")
    device = IOSDevice.from_settings(UDID, settings, pair_records_dir=tmp_path / "pr")
    return device, fake


def test_hook_gives_a_simulated_device_that_runs_through_shared_files(
    shared: tuple[IOSDevice, SharedFakeIPhone], model: Path
) -> None:
    device, fake = shared
    try:
        assert device.identity.simulated  # a fake developer side is never a real measurement
        assert device.readiness().ready, device.readiness().reasons
        result = device.run(manifest_for(model), model, timeout_s=10)
        assert result.simulated and result.batch_id == "run1-a1"
        assert result.device.product_type == fake.product_type
        assert dict(fake.container) == {}  # the run cleaned up the files the test sees
    finally:
        device.close()


def test_behaviour_set_in_the_test_process_reaches_the_worker_side(
    shared: tuple[IOSDevice, SharedFakeIPhone], model: Path
) -> None:
    device, fake = shared
    fake.behaviour = "crash"  # published at once
    try:
        with pytest.raises(Exception, match="exited without finishing"):
            device.run(manifest_for(model), model, timeout_s=10)
        assert "EXC_BAD_ACCESS" in (device.diagnostics().crash_report or "")
        assert list(fake.crash_reports) == []  # attached, then erased from the device
    finally:
        device.close()


def test_detaching_mid_run_is_seen_through_usbmuxd(
    shared: tuple[IOSDevice, SharedFakeIPhone], fake_mux: FakeUsbmuxd, model: Path
) -> None:
    device, fake = shared
    fake.behaviour = "hang"  # the runner would never finish: only the detach ends the run
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(device.run, manifest_for(model), model, 60.0)
            deadline = time.monotonic() + 10
            while not fake.launches():  # the launch the worker side made, seen from here
                assert time.monotonic() < deadline and not running.done(), "never launched"
                time.sleep(0.02)
            assert "Documents/anefarm/inbox/run1-a1/manifest.json" in fake.container
            time.sleep(0.1)  # the fake runner reads its manifest, then blocks
            fake_mux.detach(UDID)
            started = time.monotonic()
            with pytest.raises(DeviceGone, match="went away"):
                running.result(timeout=10)
        assert time.monotonic() - started < 5  # noticed at the next poll, not at the timeout
    finally:
        device.close()


def test_devices_list_honours_the_hook_and_says_simulated(
    fake_mux: FakeUsbmuxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "devices"))
    monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", fake_mux.address)
    fake_mux.attach(SharedFakeIPhone(UDID, root=tmp_path / "devices", apps=runner_app()))
    settings = load_settings(home=tmp_path, ios_developer_services=HOOK)
    rows = list_ios_devices_json(settings, pair_records_dir=tmp_path / "pr")
    assert [(r["udid"], r["state"], r["simulated"]) for r in rows] == [(UDID, "ready", True)]


def test_directory_files_behave_as_a_mapping(tmp_path: Path) -> None:
    files = DirectoryFiles(tmp_path / "c")
    files["a/b/c.bin"] = b"1"
    files["a/d"] = b""
    assert dict(files) == {"a/b/c.bin": b"1", "a/d": b""} and len(files) == 2
    del files["a/b/c.bin"]
    assert list(files) == ["a/d"] and not (tmp_path / "c" / "a" / "b").exists()
    for bad in ("/etc/passwd", "../x", ""):
        with pytest.raises(KeyError):
            files[bad] = b"no"
    with pytest.raises(KeyError):
        files["missing"]


def test_without_the_hook_the_real_services_are_used(fake_mux: FakeUsbmuxd, tmp_path: Path) -> None:
    fake_mux.attach(FakeIPhone(UDID, apps=runner_app()))
    settings = load_settings(home=tmp_path)
    assert settings.ios_developer_services is None
    device = IOSDevice.from_settings(
        UDID, settings, usbmux_address=fake_mux.address, pair_records_dir=tmp_path / "pr"
    )
    try:
        assert not device.identity.simulated
        # pymobiledevice3's image mounter finds no such service behind the fake lockdownd.
        assert "Developer Disk Image is not mounted" in device.readiness().reasons[0]
    finally:
        device.close()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tests.ios.fake_shared", "not module:function"),
        ("tests.ios.no_such_module:f", "No module named"),
        ("tests.ios.fake_shared:nothing", "has no attribute"),
        ("tests.ios.fake_shared:DIR_ENV", "not callable"),
    ],
)
def test_a_bad_hook_is_a_config_error(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_services_factory(spec)
    assert "unset it on a real farm" in (caught.value.hint or "")
