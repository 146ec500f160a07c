"""Installing and upgrading the runner from the configured .ipa, through the unmodified
pymobiledevice3 client: AFC stages the package, installation_proxy installs it (both
faked at the protocol level, tests/ios/fake_afc.py and fake_usbmuxd.py)."""

from __future__ import annotations

import plistlib
import zipfile
from pathlib import Path

import pytest

from agents.devices.ios import RunnerConfig
from tests.ios.conftest import RUNNER, DeviceFactory, runner_app


def ipa(path: Path, *, version: str = "7", bundle: str = RUNNER) -> Path:
    """A minimal .ipa: Payload/<App>.app/Info.plist (and an executable placeholder)."""
    info = {
        "CFBundleIdentifier": bundle,
        "CFBundleVersion": version,
        "CFBundleExecutable": "AneFarmRunner",
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Payload/AneFarmRunner.app/Info.plist", plistlib.dumps(info))
        archive.writestr(
            "Payload/AneFarmRunner.app/AneFarmRunner", b"\xcf\xfa\xed\xfe" + b"\0" * 64
        )
    return path


@pytest.mark.parametrize("installed", [{}, runner_app("6")], ids=["missing", "stale"])
def test_the_runner_is_installed_or_upgraded_from_the_ipa(
    ios_device: DeviceFactory, tmp_path: Path, installed: dict
) -> None:
    package = ipa(tmp_path / "AneFarmRunner.ipa")
    runner = RunnerConfig(bundle_id=RUNNER, expected_version="7", ipa_path=package)
    device, fake, _ = ios_device(apps=dict(installed), runner=runner)
    readiness = device.readiness()
    assert readiness.ready, readiness.reasons
    assert readiness.runner_version == "7" and fake.apps[RUNNER]["CFBundleVersion"] == "7"
    assert fake.installs == 1
    assert fake.staging == {}  # the staged package is removed afterwards
    assert device.readiness().ready and fake.installs == 1  # installed once, not every check


def test_an_ipa_of_the_wrong_build_leaves_the_device_not_ready_with_why(
    ios_device: DeviceFactory, tmp_path: Path
) -> None:
    package = ipa(tmp_path / "old.ipa", version="6")
    runner = RunnerConfig(bundle_id=RUNNER, expected_version="7", ipa_path=package)
    device, fake, _ = ios_device(apps={}, runner=runner)
    readiness = device.readiness()
    assert not readiness.ready and fake.installs == 1
    assert any("version 6, expected 7" in r for r in readiness.reasons)


def test_a_corrupt_ipa_is_a_reason_not_a_crash(ios_device: DeviceFactory, tmp_path: Path) -> None:
    package = tmp_path / "corrupt.ipa"
    package.write_bytes(b"not a zip at all")
    runner = RunnerConfig(bundle_id=RUNNER, expected_version="7", ipa_path=package)
    device, fake, _ = ios_device(apps={}, runner=runner)
    readiness = device.readiness()
    assert not readiness.ready and fake.installs == 0
    assert any("installing the runner failed" in r for r in readiness.reasons)
    assert fake.apps == {}


def test_a_missing_ipa_says_which_path(ios_device: DeviceFactory, tmp_path: Path) -> None:
    runner = RunnerConfig(bundle_id=RUNNER, expected_version="7", ipa_path=tmp_path / "nope.ipa")
    device, _, _ = ios_device(apps={}, runner=runner)
    readiness = device.readiness()
    assert not readiness.ready and any("nope.ipa does not exist" in r for r in readiness.reasons)
