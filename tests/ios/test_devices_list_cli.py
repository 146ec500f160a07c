"""Issue 7 acceptance: `USBMUXD_SOCKET_ADDRESS=<fake> anefarm devices list --json` lists
the fake USB devices with ProductType, OS version and readiness — through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

A = "00008020-00000000000000AA"


def test_devices_list_shows_usb_devices(fake_mux: FakeUsbmuxd, tmp_path: Path) -> None:
    fake_mux.attach(
        FakeIPhone(A, product_type="iPhone11,8", os_version="16.7.8", developer_mode=False)
    )
    env = {**os.environ, "USBMUXD_SOCKET_ADDRESS": fake_mux.address, "ANEFARM_HOME": str(tmp_path)}
    env.pop("ANEFARM_BROKER_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "devices", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["udid"], row["product_type"], row["os_version"]) == (A, "iPhone11,8", "16.7.8")
    assert row["state"] in {"not_ready", "unreachable"} and row["simulated"] is False
    assert any("Developer Mode" in reason for reason in row["reasons"]), row
