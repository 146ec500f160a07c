"""``anefarm db …`` and ``anefarm artifacts …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.settings import load_settings

db_app = typer.Typer(
    help="The database (SQLite by default, PostgreSQL at scale).", no_args_is_help=True
)
artifacts_app = typer.Typer(help="The content-addressed model store.", no_args_is_help=True)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Database URL or SQLite path (default: ANEFARM_DATABASE_URL or <home>/anefarm.db)",
    ),
]


@db_app.command("upgrade")
def db_upgrade(url: UrlOpt = None) -> None:
    """Create or migrate the database schema to the newest revision."""
    from orchestrator.store.migrate import current_revision, upgrade

    target = url or load_settings().resolved_database_url
    upgrade(target)
    typer.echo(f"database at revision {current_revision(target)}")


@db_app.command("current")
def db_current(url: UrlOpt = None) -> None:
    """Print the schema revision of the database (none = empty)."""
    from orchestrator.store.migrate import current_revision

    typer.echo(current_revision(url or load_settings().resolved_database_url) or "none")


@artifacts_app.command("add")
def artifacts_add(
    path: Annotated[Path, typer.Argument(help=".mlmodel file or .mlpackage directory")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Store a model by content and print its sha256."""
    from orchestrator.artifacts import ArtifactStore

    settings = load_settings()
    stored = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes).add(path)
    if as_json:
        body = {"sha256": stored.sha256, "filename": stored.filename, "format": stored.format,
                "size_bytes": stored.size_bytes}  # fmt: skip
        typer.echo(json.dumps(body))
    else:
        typer.echo(stored.sha256)


@artifacts_app.command("verify")
def artifacts_verify(sha256: Annotated[str, typer.Argument(help="The artifact's sha256")]) -> None:
    """Check a stored artifact against its hash."""
    from orchestrator.artifacts import ArtifactStore

    settings = load_settings()
    ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes).verify(sha256)
    typer.echo(f"{sha256}: ok")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(artifacts_app, name="artifacts")
