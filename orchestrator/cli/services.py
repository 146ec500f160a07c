"""``anefarm redis``: run the embedded Redis in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.errors import ServiceError
from orchestrator.settings import load_settings


def redis_cmd(
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1 (default: a free one)"),
    ] = None,
    unix_socket: Annotated[
        Path | None, typer.Option(help="Listen on a unix socket instead of TCP")
    ] = None,
    persist: Annotated[
        bool, typer.Option(help="Keep an append-only file under <home>/redis")
    ] = False,
) -> None:
    """Start a private Redis (loopback only) and print its URL; Ctrl-C stops it."""
    from orchestrator.broker.embedded import EmbeddedRedis

    settings = load_settings()
    server = EmbeddedRedis(settings.home, port=port, unix_socket=unix_socket, persist=persist)
    stop = threading.Event()
    # SIGTERM (systemd, a supervisor) stops as cleanly as Ctrl-C does. Both handlers are in
    # place before the URL is printed: a caller may signal as soon as it has read it.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with server:
        # The URL alone on stdout, so `URL=$(anefarm redis &)`-style scripts can read it.
        typer.echo(server.url)
        typer.echo(f"export ANEFARM_BROKER_URL={server.url}   # Ctrl-C stops it", err=True)
        try:
            while not stop.wait(0.5):
                if server.process is None or server.process.poll() is not None:
                    raise ServiceError(
                        "the embedded redis-server exited on its own",
                        hint=f"see {server.log_path}",
                    )
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("redis")(redis_cmd)
