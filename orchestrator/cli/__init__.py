"""The ``anefarm`` command line: thin commands that parse, call one function, print.

Each command family lives in its own module with a ``register(app)`` function. Errors
from the anefarm family become one line on stderr and exit status 1 (with ``--json``, a
structured error on stdout); usage errors exit 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import json
import sys

import typer

from orchestrator.errors import AnefarmError, UsageError

# Typer vendors its own copy of click; take its exception base from the public API.
ClickException: type[Exception] = typer.BadParameter.__mro__[2]

app = typer.Typer(
    name="anefarm",
    help="Find out whether Core ML models run on the Apple Neural Engine, on every device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    # Imported here, not at module import, so `anefarm --help` stays fast and each
    # family's heavy dependencies (coremltools, celery) load only when used.
    from orchestrator.cli import (
        basics,
        compat,
        devices_ios,
        models,
        pipeline,
        services,
        storage,
    )

    for family in (basics, storage, services, models, pipeline, devices_ios, compat):
        family.register(app)


def report_error(error: AnefarmError, *, as_json: bool) -> None:
    if as_json:
        body = {"error": {"kind": error.kind, "message": error.message, "hint": error.hint}}
        typer.echo(json.dumps(body))
    typer.echo(f"anefarm: error: {error.one_line()}", err=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _register_all()
    as_json = "--json" in args
    try:
        result = app(args=args, prog_name="anefarm", standalone_mode=False)
    except UsageError as error:
        report_error(error, as_json=as_json)
        sys.exit(2)
    except AnefarmError as error:
        report_error(error, as_json=as_json)
        sys.exit(1)
    except typer.Abort:
        typer.echo("anefarm: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as error:
        sys.exit(error.exit_code)
    except ClickException as error:
        error.show()  # type: ignore[attr-defined]
        sys.exit(error.exit_code)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        typer.echo("anefarm: interrupted", err=True)
        sys.exit(130)
    if isinstance(result, int):
        sys.exit(result)
