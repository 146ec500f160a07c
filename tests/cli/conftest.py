"""The CLI as people run it: ``python -m orchestrator`` in a subprocess, with settings
in ANEFARM_* environment variables and nothing inherited from the caller's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.broker.embedded import find_redis_server
from orchestrator.errors import ServiceError
from tests.services.common import free_port, missing_service, provides

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "right-horse-battery"


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANEFARM_")}
    env["ANEFARM_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(settings)
    return env


def anefarm(
    *args: str, home: Path, timeout: float = 90, **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=clean_env(home, **settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(
    out: subprocess.CompletedProcess[str], *needles: str, secret: str | None = None
) -> str:
    """Exit 1, exactly one line on stderr in the house form, with a hint; returns it."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and out.stderr.endswith("\n"), out.stderr
    line = lines[0]
    assert line.startswith("anefarm: error: "), line
    assert line.endswith(")") and " (" in line, f"no hint: {line}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    if secret is not None:
        assert secret not in out.stderr + out.stdout, line
    return line


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    return free_port()


@pytest.fixture(scope="session")
@provides("redis")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real redis-server that requires REDIS_PASSWORD."""
    try:
        binary = find_redis_server()
    except ServiceError as error:
        missing_service(error.one_line())
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-auth")
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--requirepass",
         REDIS_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port, password=REDIS_PASSWORD, socket_connect_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                pytest.fail("redis-server with requirepass exited at start")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server with requirepass did not start")
    client.close()
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def model(samples: dict[str, Path]) -> Path:
    """A valid small model, so a failure is about the service, not the input."""
    return samples["conv10x10.mlpackage"]
