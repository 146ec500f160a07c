"""``anefarm jobs``: the jobs of this database, newest first, with their runs by status."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.settings import load_settings

DEFAULT_LIMIT = 20  # as orchestrator.jobs; repeated so `--help` needs no SQLAlchemy


def jobs_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show the newest N jobs")
    ] = DEFAULT_LIMIT,
) -> None:
    """List jobs newest first: id, created, status, selector, runs by status.

    User runs and bisection probes apart. The id (or a unique prefix) is what
    status/report/cancel take."""
    from orchestrator.jobs import list_jobs
    from orchestrator.store.engine import make_engine, session_factory

    engine = make_engine(load_settings().resolved_database_url)
    try:
        with session_factory(engine)() as session:
            found = list_jobs(session, limit=limit)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    if not found.jobs:
        typer.echo("no jobs yet (`anefarm submit …` or `anefarm profile …` makes one)")
        return
    _table(found.jobs)
    if found.total > len(found.jobs):
        typer.echo(f"the newest {len(found.jobs)} of {found.total} jobs (--limit N for more)")


def _counts(total: int, by_status: dict[str, int]) -> str:
    if not total:
        return "–"
    return f"{total}: " + ", ".join(f"{n} {status}" for status, n in by_status.items())


def _table(jobs: list[dict[str, Any]]) -> None:
    table = Table("job", "created (UTC)", "status", "devices", "runs", "probe runs")
    for job in jobs:
        table.add_row(
            job["job"],
            str(job["created_at"])[:19].replace("T", " "),
            job["status"],
            job["selector"],
            _counts(job["runs"], job["by_status"]),
            _counts(job["probe_runs"], job["probe_by_status"]),
        )
    # Wide enough that a full job id is never cut: people copy it.
    Console(width=max(160, Console().width)).print(table)


def register(app: typer.Typer) -> None:
    app.command("jobs")(jobs_cmd)
