"""``anefarm compat``: the fleet-wide compatibility matrix (op signature × chip × OS)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator import catalog
from orchestrator.errors import UsageError
from orchestrator.settings import load_settings


def compat_cmd(
    chip: Annotated[
        list[str] | None, typer.Option(help="Only these chips: A12,A14 or repeated")
    ] = None,
    op: Annotated[str | None, typer.Option(help="Only op types containing this, e.g. conv")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False,
) -> None:
    """Where each probed op signature runs, per chip and OS build, beside the lint's guess.

    With its evidence: the probe results of every job so far."""
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.bisect.compat import as_csv as render_csv
    from orchestrator.bisect.compat import cells
    from orchestrator.store.engine import database_error, make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    # An unknown chip is an error, not an empty matrix (which reads as "nothing probed yet").
    chips = {c.name.casefold() for c in catalog.chips(chip)} if chip is not None else None
    settings = load_settings()
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            found = cells(session, op=op)
    except SQLAlchemyError as error:
        raise database_error(error, settings.resolved_database_url) from error
    finally:
        engine.dispose()
    if chips is not None:
        found = [c for c in found if str(c["chip"]).casefold() in chips]
    if as_json:
        typer.echo(json.dumps({"cells": found}, indent=2))
    elif as_csv:
        sys.stdout.write(render_csv(found))
    else:
        _table(found)


def _table(found: list[dict[str, object]]) -> None:
    console = Console()
    if not found:
        console.print(
            "the compatibility matrix is empty: it grows with every bisection"
            " (`anefarm submit --bisect`, or any non-FULL verdict without a compute plan)"
        )
        return
    table = Table(title="anefarm compatibility matrix", pad_edge=False)
    for column in ("op", "signature", "chip", "OS", "unit", "conf", "evidence", "last seen",
                   "lint", ""):  # fmt: skip
        table.add_column(column)
    for c in found:
        lint = str(c["lint_unit"]) + (f" ({c['lint_rule']})" if c["lint_rule"] else "")
        flag = "[yellow]disagree[/yellow]" if c["disagree"] else ""
        if c["simulated"]:
            flag = (flag + " [magenta]SIMULATED[/magenta]").strip()
        conf = "–" if c["confidence"] is None else f"{c['confidence']:.1f}"
        table.add_row(
            str(c["op_type"]), str(c["signature"])[:12], str(c["chip"]),
            f"{c['os_version']} ({c['os_build']})", str(c["unit"]), conf, str(c["evidence"]),
            str(c["last_seen"])[:10], lint, flag,
        )  # fmt: skip
    console.print(table)
    if any(c["simulated"] for c in found):
        console.print(
            "[magenta]SIMULATED[/magenta] cells come from simulated devices (docs/simulation.md);"
            " they are kept apart from real ones and never reused for them."
        )


def register(app: typer.Typer) -> None:
    app.command("compat")(compat_cmd)
