"""Running the app under uvicorn: in the foreground (``anefarm serve``) or on a thread of
the coordinator (``anefarm coordinator --serve HOST:PORT``).

The listening socket is bound here, before uvicorn starts, so that a port in use is one
clear error (uvicorn would log it and exit the process). uvicorn's access log prints the
client, the request line and the status, never a header: the bearer token stays out of
it (tests/web/test_tokens.py reads the log to make sure).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from orchestrator.errors import ServiceError, UsageError
from orchestrator.settings import Settings

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8480
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
log = logging.getLogger("anefarm.web")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, or ``[::1]:PORT``) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"not an address: {text!r}", hint="HOST:PORT, e.g. 127.0.0.1:8480")
    return host.strip("[]") or DEFAULT_HOST, int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or one line saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(
            f"cannot listen on {host!r}: {error.strerror}", hint="check --host"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ServiceError(
                f"port {port} on {host} is in use",
                hint="another `anefarm serve` or coordinator --serve? stop it or choose --port",
            ) from None
        raise ServiceError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, but a Ctrl-C or SIGTERM ends ``run`` normally: uvicorn re-raises
    the signal after its graceful shutdown, which would end `anefarm serve` as killed (or
    "interrupted") after a stop that went well."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # a thread of the coordinator: the coordinator stops it
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class WebServer:
    """The app on a socket it bound itself; ``run`` in the foreground or ``start`` a thread."""

    def __init__(
        self, settings: Settings, host: str, port: int, *, log_requests: bool = True
    ) -> None:
        from orchestrator.web.app import create_app

        self.socket = bind(host, port)
        self.host = host
        self.port = self.socket.getsockname()[1]  # port 0 → the one the OS chose
        app = create_app(settings, bound_host=host)
        config = uvicorn.Config(
            app,
            log_config=uvicorn.config.LOGGING_CONFIG if log_requests else None,
            access_log=log_requests,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self.server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM (uvicorn handles both in the main thread)."""
        # What is alive now (settings, imported modules, the app) lives as long as the
        # process: moved out of the collector's reach, a big page no longer pays a full
        # collection over it (bench/dashboard.py: job page 259 → 121 ms).
        gc.freeze()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, *, ready_within_s: float = 10.0) -> WebServer:
        self._thread = threading.Thread(target=self.run, name="anefarm-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_within_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServiceError(f"the web app did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, *, within_s: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(within_s)
        else:
            self.socket.close()  # bound, never served
