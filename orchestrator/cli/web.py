"""``anefarm serve`` (the web app: API, artifacts, dashboard) and ``anefarm tokens …``
(the API's tokens)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orchestrator.settings import load_settings

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8480  # as orchestrator.web.server; no uvicorn for --help

tokens_app = typer.Typer(
    help="API tokens of the web app: roles read < submit < admin.", no_args_is_help=True
)


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on")] = DEFAULT_PORT,
) -> None:
    """Serve the dashboard, the HTTP API and the model downloads agents use, until Ctrl-C.

    The API is under /api/v1, the downloads under /artifacts/<sha256>. Reads need a token
    (`anefarm tokens create --role read`) unless ANEFARM_OPEN_READS=1 on loopback."""
    from orchestrator.store.migrate import upgrade
    from orchestrator.web.server import WebServer

    settings = load_settings()
    upgrade(settings.resolved_database_url)
    server = WebServer(settings, host, port)
    typer.echo(
        f"anefarm web app at {server.url} (API: {server.url}/api/v1, Ctrl-C stops)", err=True
    )
    if not settings.open_reads:
        # A newcomer's first page was a 401 in JSON: say how to get in before they try.
        typer.echo(
            "every page needs a token: `anefarm tokens create --role read --name me`, sent as"
            " `Authorization: Bearer <token>`; on your own machine"
            " `ANEFARM_OPEN_READS=1 anefarm serve` lets reads in without one",
            err=True,
        )
    server.run()
    typer.echo("anefarm web app stopped", err=True)


def _sessions() -> Any:
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    url = load_settings().resolved_database_url
    upgrade(url)
    return session_factory(make_engine(url))


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="read, submit or admin")],
    name: Annotated[str, typer.Option("--name", help="A name to list and revoke it by")],
) -> None:
    """Make a token and print it, once: only its hash is stored."""
    from orchestrator.web import tokens

    wanted = tokens.role_of(role)  # a wrong role is refused before the database is touched
    token = tokens.create(_sessions(), name=name, role=wanted)
    typer.echo(token)
    typer.echo(
        f"token {name!r} ({role}): shown once; send it as `Authorization: Bearer <token>`",
        err=True,
    )


@tokens_app.command("list")
def tokens_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """The tokens: name, role, created, last used (never the token)."""
    from orchestrator.web import tokens

    with _sessions()() as session:
        found = tokens.list_tokens(session)
    if as_json:
        typer.echo(json.dumps([t.to_json() for t in found], indent=2))
        return
    if not found:
        typer.echo("no tokens yet (`anefarm tokens create --role read --name NAME`)")
        return
    for t in found:
        used = t.last_used_at.isoformat()[:19] if t.last_used_at else "never"
        typer.echo(f"{t.name}\t{t.role}\tcreated {t.created_at.isoformat()[:19]}\tused {used}")


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Delete a token: requests with it are refused (401) from now on."""
    from orchestrator.web import tokens

    tokens.revoke(_sessions(), name)
    typer.echo(f"token {name!r} revoked")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.add_typer(tokens_app, name="tokens")
