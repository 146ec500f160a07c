"""``anefarm serve``: serves until SIGTERM or Ctrl-C and then exits 0; a port in use is
one line with a hint, for ``serve`` and for ``coordinator --serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.cli.conftest import anefarm, assert_one_line_error, clean_env
from tests.services.common import free_port


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def first_answer(proc: subprocess.Popen[str], port: int, *, timeout_s: float) -> httpx.Response:
    """The app's first answer to a read of the jobs, asked again while ``proc`` starts; the
    test fails when the process exits first or nothing answers within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", timeout=2)
        except httpx.HTTPError:
            assert proc.poll() is None, f"exited {proc.returncode} before answering"
            assert time.monotonic() < deadline, f"no answer on port {port} in {timeout_s:g} s"
            time.sleep(0.2)


def test_serve_on_a_port_in_use_is_one_line(tmp_path, busy_port):
    out = anefarm("serve", "--port", str(busy_port), home=tmp_path / "home")
    assert_one_line_error(out, f"port {busy_port} on 127.0.0.1 is in use", "--port")


def test_coordinator_serve_on_a_port_in_use_is_one_line(tmp_path, busy_port, redis_url):
    out = anefarm(
        "coordinator", "--serve", f"127.0.0.1:{busy_port}", home=tmp_path / "home",
        ANEFARM_BROKER_URL=redis_url,
    )  # fmt: skip
    assert_one_line_error(out, f"port {busy_port} on 127.0.0.1 is in use")


def test_coordinator_serve_needs_host_and_port(tmp_path, redis_url):
    out = anefarm("coordinator", "--serve", "nowhere", home=tmp_path / "home",
                  ANEFARM_BROKER_URL=redis_url)  # fmt: skip
    assert out.returncode == 2 and "not an address: 'nowhere'" in out.stderr, out.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly(tmp_path, stop):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", str(port)],
        env=clean_env(tmp_path / "home", ANEFARM_OPEN_READS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = first_answer(proc, port, timeout_s=60)
        # Loopback and ANEFARM_OPEN_READS=1: a read needs no token; a write still does.
        assert answer.status_code == 200 and answer.json() == {"jobs": [], "total": 0}
        denied = httpx.post(f"http://127.0.0.1:{port}/api/v1/jobs", timeout=5)
        assert denied.status_code == 401
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"anefarm web app at http://127.0.0.1:{port}" in err
    assert "stopped" in err and "Traceback" not in err


@pytest.mark.celery  # the coordinator is a Celery worker
def test_coordinator_serves_the_app_and_stops_on_sigterm(tmp_path, redis_url):
    port = free_port()
    env = clean_env(tmp_path / "home", ANEFARM_BROKER_URL=redis_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "coordinator", "--serve", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        answer = first_answer(proc, port, timeout_s=90)
        assert answer.status_code == 401  # no open reads inside the coordinator by default
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"serving the web app and artifacts at http://127.0.0.1:{port}" in out
    assert "Traceback" not in out
    with socket.socket() as sock:  # the port is free again
        sock.bind(("127.0.0.1", port))
