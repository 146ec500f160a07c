"""`anefarm devices check UDID` against the fake usbmuxd: every bring-up step in order, each
ok or FAIL with its fix, stopping at the first blocking failure; exit 0 only when all pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.devices.ios import ddi
from agents.devices.ios.bringup import CHECK_BATCH, Step, transport
from orchestrator.cli.devices_ios import check_device
from orchestrator.settings import load_settings
from tests.ios.conftest import UDID, run_cli, runner_app
from tests.ios.fake_developer import RUNNER_PID, FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

IMAGES = {
    ddi.ImageKey("16.7"): {
        "DeveloperDiskImage.dmg": b"dmg",
        "DeveloperDiskImage.dmg.signature": b"s",
    },
    ddi.ImageKey(""): {"Image.dmg": b"dmg", "BuildManifest.plist": b"m", "Image.trustcache": b"t"},
}
# The device the ANEFARM_IOS_DEVELOPER_SERVICES hook below serves (set by a test).
_SERVED: dict[str, FakeDeveloperServices] = {}


def developer_services(udid: str) -> FakeDeveloperServices:
    """The hook `anefarm devices check` gets its fake developer services from."""
    return _SERVED[udid]


@pytest.fixture(autouse=True)
def no_foreign_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ddi, "XCODE_APP", tmp_path / "no-Xcode.app")
    monkeypatch.setattr(ddi, "PMD3_HOME", tmp_path / "no-pmd3")


def prepared_cache(tmp_path: Path, *versions: str) -> Path:
    cache = tmp_path / "ddi"
    ddi.prepare(cache, versions, fetch=lambda key: IMAGES[key])  # no network: a fake fetch
    return cache


def check(
    fake_mux: FakeUsbmuxd,
    tmp_path: Path,
    cache: Path,
    *,
    launch: bool = False,
    services: FakeDeveloperServices | None = None,
    **settings: Any,
) -> list[Step]:
    lines: list[str] = []
    steps = check_device(
        UDID,
        load_settings(home=tmp_path, **settings),
        usbmux_address=fake_mux.address,
        pair_records_dir=tmp_path / "pair-records",
        # No FakeIPhone when none is plugged in: the fake services are built anyway, as
        # they always were (the bring-up walk reports the missing device).
        developer_services=lambda udid: (
            services or FakeDeveloperServices(fake_mux, fake_mux.devices.get(udid))  # type: ignore[arg-type]
        ),
        ddi_cache=cache,
        launch=launch,
        echo=lines.append,
    )
    assert len([line for line in lines if not line.lstrip().startswith("fix:")]) == len(steps)
    return steps


def summary(steps: list[Step]) -> list[tuple[str, str]]:
    return [(step.name, step.status) for step in steps]


@pytest.mark.parametrize(
    ("os_version", "via"), [("16.7.2", "lockdown"), ("17.2", "tunneld"), ("17.5", "userspace")]
)
def test_a_ready_device_passes_every_step(
    fake_mux: FakeUsbmuxd, tmp_path: Path, os_version: str, via: str
) -> None:
    fake = fake_mux.attach(FakeIPhone(UDID, os_version=os_version, apps=runner_app("7")))
    steps = check(fake_mux, tmp_path, prepared_cache(tmp_path, os_version), ios_runner_version="7")
    assert summary(steps) == [
        ("usbmuxd", "ok"),
        ("pairing", "ok"),
        ("developer mode", "ok"),
        ("iOS", "ok"),
        ("disk image", "ok"),
        ("developer services", "ok"),
        ("runner", "ok"),
        ("health", "ok"),
    ]
    assert f"({fake.product_type}, iOS {os_version})" in steps[1].detail
    assert steps[3].detail.startswith(f"{os_version} → developer services over {via}")
    assert "in anefarm cache" in steps[4].detail
    assert steps[6].detail == "org.anefarm.runner version 7 installed"
    assert steps[7].detail == "battery 80% charging, 30.5 °C"


def test_an_unpaired_device_stops_at_pairing_with_the_fix(
    fake_mux: FakeUsbmuxd, tmp_path: Path
) -> None:
    fake_mux.attach(FakeIPhone(UDID, paired=False, apps=runner_app()))
    steps = check(fake_mux, tmp_path, prepared_cache(tmp_path, "16.7"))
    assert summary(steps) == [("usbmuxd", "ok"), ("pairing", "FAIL")]
    assert steps[1].blocking
    assert steps[1].fix == f"run `anefarm devices pair {UDID}` and tap Trust on the device"


def test_each_blocking_failure_stops_the_walk_with_its_fix(
    fake_mux: FakeUsbmuxd, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    steps = check(fake_mux, tmp_path, empty)  # nothing attached
    assert summary(steps) == [("usbmuxd", "FAIL")]
    assert "not attached over USB (attached: none)" in steps[0].detail

    fake = fake_mux.attach(FakeIPhone(UDID, os_version="17.4.1", developer_mode=False))
    steps = check(fake_mux, tmp_path, empty)
    assert summary(steps)[-1] == ("developer mode", "FAIL")
    assert steps[-1].fix and "Privacy & Security → Developer Mode" in steps[-1].fix

    fake.developer_mode = True
    steps = check(fake_mux, tmp_path, empty)
    assert summary(steps)[-1] == ("disk image", "FAIL")
    assert (
        steps[-1].fix == "run `anefarm devices prepare --ios 17.4`; it needs internet access once"
    )

    fake.ddi_available = False  # the image is here but the device refuses it
    steps = check(fake_mux, tmp_path, prepared_cache(tmp_path, "17.4"))
    assert summary(steps)[-1] == ("developer services", "FAIL")
    # The driver's reason split at its last ': ' outside the parenthesised detail.
    assert steps[-1].detail.startswith("Developer Disk Image is not mounted and mounting failed (")
    assert steps[-1].fix and steps[-1].fix.startswith("run `anefarm devices prepare`")


def test_runner_and_health_problems_are_reported_after_the_rest(
    fake_mux: FakeUsbmuxd, tmp_path: Path
) -> None:
    fake_mux.attach(FakeIPhone(UDID, apps=runner_app("6"), battery_percent=10, charging=False))
    steps = check(fake_mux, tmp_path, prepared_cache(tmp_path, "16.7"), ios_runner_version="7")
    assert summary(steps)[-2:] == [("runner", "FAIL"), ("health", "FAIL")]
    assert steps[-2].detail == "org.anefarm.runner is version 6, expected 7"
    assert "ANEFARM_IOS_RUNNER_IPA" in (steps[-2].fix or "")
    assert "battery 10% and not charging" in steps[-1].detail
    assert steps[-1].fix == "plug the device into a powered hub"

    ipa = tmp_path / "runner.ipa"
    ipa.write_bytes(b"PK")
    steps = check(fake_mux, tmp_path, prepared_cache(tmp_path, "16.7"),
                  ios_runner_version="7", ios_runner_ipa=str(ipa))  # fmt: skip
    assert steps[-2].status == "warn" and "the agent installs" in (steps[-2].fix or "")


def test_transport_by_ios_version() -> None:
    assert transport("16.7.2").startswith("lockdown")
    assert transport("17.0").startswith("tunneld") and transport("17.3.1").startswith("tunneld")
    assert transport("17.4").startswith("userspace") and transport("26.1").startswith("userspace")


def test_the_command_exits_0_when_ready_and_1_with_one_error_line_otherwise(
    fake_mux: FakeUsbmuxd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = fake_mux.attach(FakeIPhone(UDID, apps=runner_app()))
    _SERVED[UDID] = FakeDeveloperServices(fake_mux, fake)
    home = tmp_path / "home"
    monkeypatch.setenv("ANEFARM_HOME", str(home))
    monkeypatch.delenv("ANEFARM_AGENT_CACHE_DIR", raising=False)
    monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", fake_mux.address)
    monkeypatch.setenv("ANEFARM_IOS_DEVELOPER_SERVICES", f"{__name__}:developer_services")
    try:
        assert run_cli("devices", "check", UDID) == 1
        captured = capsys.readouterr()
        assert "FAIL  disk image" in captured.out
        assert "fix: run `anefarm devices prepare --ios 16.7`" in captured.out
        [line] = captured.err.splitlines()
        assert line.startswith(f"anefarm: error: {UDID} failed the bring-up check at disk image")

        ddi.prepare(home / "agent-cache" / "ddi", ["16.7"], fetch=lambda key: IMAGES[key])
        assert run_cli("devices", "check", UDID) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("note: developer services from ANEFARM_IOS_DEVELOPER")
        assert captured.out.count("\nok ") == 8 and "\nok    usbmuxd" in captured.out
        assert "all 8 steps ok: start the agent" in captured.out and captured.err == ""

        fake.paired = False
        assert run_cli("devices", "check", UDID) == 1
        captured = capsys.readouterr()
        assert "FAIL  pairing" in captured.out and "disk image" not in captured.out
        assert f"(run `anefarm devices pair {UDID}` and tap Trust" in captured.err
    finally:
        _SERVED.clear()


def test_launch_starts_the_runner_once_and_stops_it(fake_mux: FakeUsbmuxd, tmp_path: Path) -> None:
    # "hang": the fake runner stays up after its launch, as the real one idles on its screen.
    fake = fake_mux.attach(FakeIPhone(UDID, apps=runner_app("7"), behaviour="hang"))
    services = FakeDeveloperServices(fake_mux, fake)
    cache = prepared_cache(tmp_path, "16.7")
    steps = check(fake_mux, tmp_path, cache, launch=True, services=services)
    assert summary(steps)[-3:] == [("runner", "ok"), ("launch", "ok"), ("health", "ok")]
    assert services.launched == [("org.anefarm.runner", ["--batch", CHECK_BATCH], CHECK_BATCH)]
    assert services.killed == [RUNNER_PID] and not services.running

    fake.profile_trusted = False  # the first run on a new device, nearly always
    steps = check(fake_mux, tmp_path, cache, launch=True)
    assert summary(steps)[-2:] == [("launch", "FAIL"), ("health", "ok")]
    assert steps[-2].detail == "the runner's developer profile is not trusted on this device"
    assert (steps[-2].fix or "").startswith("Settings → General → VPN & Device Management")
