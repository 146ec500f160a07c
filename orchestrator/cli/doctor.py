"""``anefarm doctor``: check this deployment's settings and services (orchestrator/ops)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.settings import load_settings


def doctor_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output on stdout")
    ] = False,
) -> int:
    """Check the broker, database, agents' clocks and disk; print what to fix (exit 1 if any)."""
    from orchestrator.ops.doctor import diagnose, must_fix, render_json

    findings = diagnose(load_settings())
    if as_json:
        typer.echo(render_json(findings))
    else:
        for finding in findings:
            typer.echo(finding.line())
    return 1 if must_fix(findings) else 0


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_cmd)
