"""`anefarm agent --ios`: the supervisor follows usbmux attach/detach (a fake usbmuxd) and
runs one worker per USB device, which reports the device's identity and readiness reasons
in the farm's live state. (No real developer services here, so the device is not ready.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.protocol import livestate
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

pytestmark = [pytest.mark.redis, pytest.mark.celery]
A = "00008020-00000000000000AA"


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


def test_agent_follows_usb_attach_and_detach(
    fake_mux: FakeUsbmuxd, redis_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "USBMUXD_SOCKET_ADDRESS": fake_mux.address, "ANEFARM_HOME": str(tmp_path),
           "ANEFARM_BROKER_URL": redis_url, "ANEFARM_HEARTBEAT_TTL_S": "3"}  # fmt: skip
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "agent", "--ios", "--name", "mac-1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = livestate.connect(redis_url)
    try:
        fake_mux.attach(FakeIPhone(A, product_type="iPhone11,8", os_version="16.7.8"))
        seen = wait_for(lambda: [d for d in livestate.live_devices(client) if d.udid == A])
        assert seen, (tmp_path / "agent.log").read_text()
        device = seen[0]
        assert (device.product_type, device.os_version, device.agent) == (
            "iPhone11,8",
            "16.7.8",
            "mac-1",
        )
        assert device.simulated is False and device.state == "not_ready" and device.reasons
        fake_mux.detach(A)
        gone = wait_for(
            lambda: not [d for d in livestate.live_devices(client) if d.udid == A], timeout=30
        )
        assert gone, "the worker of a detached device must stop (its heartbeat expires)"
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(agent.pid, signal.SIGKILL)
            log.close()
