"""Discovery (one-shot and attach/detach following), `devices list` rows, `devices pair`,
and the unmodified pymobiledevice3 CLI against the fake usbmuxd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.devices.ios import list_ios_devices, watch_devices
from agents.devices.ios.pairing import pair_device
from orchestrator.cli.devices_ios import list_ios_devices_json
from orchestrator.errors import DeviceGone, DeviceNotReady
from orchestrator.settings import load_settings
from tests.ios.conftest import runner_app
from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

A, B = "00008020-00000000000000AA", "00008101-00000000000000BB"


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_list_sees_attached_devices(fake_mux: FakeUsbmuxd) -> None:
    assert list_ios_devices(fake_mux.address) == []
    fake_mux.attach(FakeIPhone(B))
    fake_mux.attach(FakeIPhone(A))
    assert list_ios_devices(fake_mux.address) == [A, B]


def test_list_without_usbmuxd_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceGone, match="usbmuxd"):
        list_ios_devices(str(tmp_path / "nothing-here"))


def test_watch_follows_attach_and_detach(fake_mux: FakeUsbmuxd) -> None:
    fake_mux.attach(FakeIPhone(A))
    events: list[tuple[str, str]] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_devices,
        args=(lambda u: events.append(("attach", u)), lambda u: events.append(("detach", u)), stop),
        kwargs={"usbmux_address": fake_mux.address},
    )
    watcher.start()
    try:
        wait_for(lambda: events == [("attach", A)])
        fake_mux.attach(FakeIPhone(B))
        wait_for(lambda: ("attach", B) in events)
        fake_mux.detach(A)
        wait_for(lambda: ("detach", A) in events)
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()
    assert events == [("attach", A), ("attach", B), ("detach", A)]


def test_devices_list_rows(fake_mux: FakeUsbmuxd, tmp_path: Path) -> None:
    fake_mux.attach(FakeIPhone(A, apps=runner_app()))
    fake_mux.attach(
        FakeIPhone(B, product_type="iPhone13,2", os_version="17.5", developer_mode=False)
    )
    settings = load_settings(home=tmp_path)
    rows = list_ios_devices_json(
        settings,
        usbmux_address=fake_mux.address,
        pair_records_dir=tmp_path / "pr",
        developer_services=lambda udid: FakeDeveloperServices(fake_mux, fake_mux.devices[udid]),
    )
    assert [(r["udid"], r["product_type"], r["os_version"], r["state"]) for r in rows] == [
        (A, "iPhone11,8", "16.7.2", "ready"),
        (B, "iPhone13,2", "17.5", "not_ready"),
    ]
    assert rows[1]["reasons"] == [
        "Developer Mode is off: Settings → Privacy & Security → Developer Mode"
    ]
    assert all(r["simulated"] is False for r in rows)
    json.dumps(rows)  # the lead prints it as JSON


def test_devices_list_with_real_developer_services_reports_the_missing_image(
    fake_mux: FakeUsbmuxd, tmp_path: Path
) -> None:
    # The fake lockdownd has no image mounter, as a device without a reachable DDI.
    fake_mux.attach(FakeIPhone(A, apps=runner_app()))
    rows = list_ios_devices_json(
        load_settings(home=tmp_path), usbmux_address=fake_mux.address, pair_records_dir=tmp_path
    )
    assert rows[0]["state"] == "not_ready"
    assert "Developer Disk Image is not mounted" in rows[0]["reasons"][0]


@pytest.mark.parametrize(
    ("trust", "expected"),
    [("pending", "tap Trust"), ("deny", "declined")],
)
def test_pair_refused_or_unanswered_says_what_to_do(
    fake_mux: FakeUsbmuxd, tmp_path: Path, trust: str, expected: str
) -> None:
    fake = fake_mux.attach(FakeIPhone(B, paired=False, trust=trust))
    with pytest.raises(DeviceNotReady, match=expected):
        pair_device(B, usbmux_address=fake_mux.address, timeout_s=0, pair_records_dir=tmp_path)
    assert not fake.paired


def test_pair_then_the_device_is_ready(
    fake_mux: FakeUsbmuxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pymobiledevice3 11.45 saves the new pair record to usbmuxd at the default address
    # (PlistUsbmuxLockdownClient.save_pair_record ignores usbmux_address); the variable
    # is how a relocated usbmuxd is reached anyway.
    monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", fake_mux.address)
    fake = fake_mux.attach(FakeIPhone(B, name="bench XS", paired=False, apps=runner_app()))
    records = tmp_path / "pr"
    assert pair_device(B, usbmux_address=fake_mux.address, pair_records_dir=records) == "bench XS"
    assert fake.paired and (records / f"{B}.plist").exists()
    rows = list_ios_devices_json(
        load_settings(home=tmp_path),
        usbmux_address=fake_mux.address,
        pair_records_dir=records,
        developer_services=lambda udid: FakeDeveloperServices(fake_mux, fake_mux.devices[udid]),
    )
    assert rows[0]["state"] == "ready", rows


def test_unmodified_pymobiledevice3_cli_lists_fake_devices(fake_mux: FakeUsbmuxd) -> None:
    fake_mux.attach(FakeIPhone(A, product_type="iPhone14,5", os_version="18.1"))
    env = {**os.environ, "USBMUXD_SOCKET_ADDRESS": fake_mux.address}
    out = subprocess.run(
        [sys.executable, "-m", "pymobiledevice3", "usbmux", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [(d["UniqueDeviceID"], d["ProductType"], d["ProductVersion"]) for d in listed] == [
        (A, "iPhone14,5", "18.1")
    ]
