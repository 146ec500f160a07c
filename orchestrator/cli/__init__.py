"""The ``anefarm`` command line: thin commands that parse, call one function, print.

Each command family lives in its own module with a ``register(app)`` function. Every
failure is one line on stderr, ``anefarm: error: <what> (<what to do>)``, never a
traceback (``ANEFARM_DEBUG=1`` adds it): anefarm's own errors as they are, any other
exception translated by ``cli.edge`` (broker, database, file system). With ``--json`` a
structured error goes to stdout as well. Exit status: 0 ok, 1 error, 2 usage,
130 interrupted (3 and 4 are the findings and failed-runs statuses of some commands).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from orchestrator.cli import edge
from orchestrator.errors import AnefarmError, UsageError, mask

ERROR_EXIT, USAGE_EXIT, INTERRUPTED_EXIT = 1, 2, 130
# Commands that start one child process per device: with the broker down or refusing
# the password, each child would print its own traceback, so they check it first; the
# coordinator too, whose Celery consumer would otherwise retry a wrong password for ever.
BROKER_FIRST = ("agent", "coordinator")

app = typer.Typer(
    name="anefarm",
    help="Find out whether Core ML models run on the Apple Neural Engine, on every device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click passes these on to every command's context: `anefarm report -h` works too.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"anefarm {version('anefarm')}")
        except PackageNotFoundError:  # a checkout run without installing it
            typer.echo("anefarm (not installed: no version)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print anefarm's version and exit.",
    ),
) -> None:
    """Find out whether Core ML models run on the Apple Neural Engine, on every device."""


def _plain_types() -> None:
    # Typer's help shows a type beside every parameter, `--json <bool>`, `job <str>`: for a
    # flag or a string it says nothing the name and help do not; other types still show.
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperOption, TyperArgument):
        shown = cls.display_type_rich

        def display(self: Any, ctx: Any, _shown: Any = shown) -> str | None:
            if getattr(self, "is_flag", False):
                return None
            label = _shown(self, ctx)
            return None if label in ("<str>", "<bool>") else label

        cls.display_type_rich = display  # type: ignore[method-assign]


_plain_types()


# The command families, in the order their commands are listed in `anefarm --help`.
FAMILIES = ("basics", "storage", "services", "models", "submit", "pipeline", "jobs", "devices",
            "devices_ios", "compat", "web", "sweeps", "alerts", "doctor")  # fmt: skip
# Top-level command → the families that register it or add a subcommand to it. A short
# command imports only these: all 14 cost ~0.2 s CPU more than one, paid ~300 times by
# the tests (docs/performance.md "CLI start-up"). Anything else (no command, `--help`, a
# misspelt name, whose suggestions need every name) registers all.
# tests/cli/test_lazy_families.py checks the map against what each family registers.
OWNERS: dict[str, tuple[str, ...]] = {
    "schema": ("basics",),
    "db": ("storage",),
    "artifacts": ("storage",),
    "redis": ("services",),
    **dict.fromkeys(("inspect", "lint", "probes", "samples"), ("models",)),
    **dict.fromkeys(("submit", "status", "report", "cancel", "profile"), ("submit",)),
    **dict.fromkeys(("demo", "agent", "coordinator"), ("pipeline",)),
    "jobs": ("jobs",),
    "devices": ("basics", "devices", "devices_ios"),
    "compat": ("compat",),
    "serve": ("web",),
    "tokens": ("web",),
    "sweep": ("sweeps", "alerts"),
    "alerts": ("alerts",),
    "doctor": ("doctor",),
}
_registered: set[str] = set()  # main() may run more than once in one process (tests)
_rank: dict[int, int] = {}  # id of a command or group info → its family's place in FAMILIES


def families_for(args: list[str]) -> tuple[str, ...]:
    """The families ``anefarm <args>`` needs: the owners of its command, or all of them
    when the first argument is no command of the map (an option of the root included)."""
    return OWNERS.get(args[0], FAMILIES) if args else FAMILIES


def _register(families: tuple[str, ...]) -> None:
    # Imported here, not at module import, so `anefarm --help` stays fast and each
    # family's heavy dependencies (coremltools, celery) load only when used.
    for rank, name in enumerate(FAMILIES):
        if name not in families or name in _registered:
            continue
        commands, groups = len(app.registered_commands), len(app.registered_groups)
        importlib.import_module(f"orchestrator.cli.{name}").register(app)
        _registered.add(name)
        for info in app.registered_commands[commands:]:
            _rank[id(info)] = rank
            if info.name in BROKER_FIRST and info.callback is not None:
                info.callback = _broker_first(info.callback)
        for group in app.registered_groups[groups:]:
            _rank[id(group)] = rank
    # A later call registers more families: keep the order of a single registration
    # of all, which `anefarm --help` shows (sort is stable within a family).
    app.registered_commands.sort(key=lambda info: _rank.get(id(info), len(FAMILIES)))
    app.registered_groups.sort(key=lambda info: _rank.get(id(info), len(FAMILIES)))


def _broker_first(command: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature Typer builds the options from.
    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from orchestrator.settings import load_settings

        url = load_settings().broker_url
        if url:  # without one, the command itself says how to configure it
            edge.check_broker(url)
        return command(*args, **kwargs)

    return checked


def report_error(error: AnefarmError, *, as_json: bool) -> None:
    # Hints are our own words: their URLs are examples, only real secrets are masked.
    message, hint = mask(error.message), mask(error.hint, urls=False) if error.hint else None
    if as_json:
        body = {"error": {"kind": error.kind, "message": message, "hint": hint}}
        typer.echo(json.dumps(body))
    line = AnefarmError(message, hint=hint).one_line()
    typer.echo(f"anefarm: error: {line}", err=True)


def _fail(error: BaseException, *, as_json: bool) -> NoReturn:
    if edge.debug_enabled():
        edge.print_traceback(error)
    translated = edge.translate(error)
    report_error(translated, as_json=as_json)
    sys.exit(USAGE_EXIT if isinstance(translated, UsageError) else ERROR_EXIT)


# A reader that went away (`anefarm report JOB | head`) is no failure of ours (issue 13).
BROKEN_PIPE_EXIT = 0


def _quiet_broken_pipe() -> None:
    """rich answers a closed stdout with SystemExit(1); make it the BrokenPipeError that
    ``main`` ends quietly on."""
    from rich.console import Console

    def on_broken_pipe(self: Console) -> None:
        raise BrokenPipeError

    Console.on_broken_pipe = on_broken_pipe  # type: ignore[method-assign]


def _help_hint(error: BaseException) -> str:
    """``see `anefarm report -h``` for the command the error is about."""
    ctx = getattr(error, "ctx", None)
    path = getattr(ctx, "command_path", None) or "anefarm"
    return f"see `{path} -h`"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    _quiet_broken_pipe()
    try:
        _register(families_for(args))
        result = app(args=args, prog_name="anefarm", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("anefarm: interrupted", err=True)
        sys.exit(INTERRUPTED_EXIT)
    except typer.Exit as error:
        sys.exit(error.exit_code)
    except SystemExit as error:
        # click answers a closed stdout (EPIPE) by wrapping stdout in its (private)
        # _PacifyFlushWrapper and exiting 1: that exit is a reader gone, not a failure.
        if error.code == 1 and "PacifyFlushWrapper" in type(sys.stdout).__name__:
            sys.exit(BROKEN_PIPE_EXIT)
        raise
    except BrokenPipeError:
        # The reader went away (`anefarm report JOB | head`): stop quietly, as a Unix tool
        # does on SIGPIPE; Python would otherwise complain once more at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(BROKEN_PIPE_EXIT)
    except AnefarmError as error:
        _fail(error, as_json=as_json)
    except typer.TyperException as error:
        # Typer's usage errors (it vendors click; TyperException is their public base):
        # one line like every other error, with the help command as the hint, and their
        # exit code (2 for usage). Click's own form is four lines with a blank one.
        message = getattr(error, "format_message", lambda: "")().rstrip(".")
        show = getattr(error, "show", None)
        if show is None:
            _fail(error, as_json=as_json)
        if message:
            report_error(UsageError(message, hint=_help_hint(error)), as_json=as_json)
        else:  # a group named alone (`anefarm sweep`): its help, as Typer shows it
            show()
        sys.exit(getattr(error, "exit_code", USAGE_EXIT))
    except Exception as error:  # noqa: BLE001 - the edge: every failure becomes one line
        _fail(error, as_json=as_json)
    if isinstance(result, int):
        if result == INTERRUPTED_EXIT:
            # Typer turns a KeyboardInterrupt inside a command into this code, silently.
            typer.echo("anefarm: interrupted", err=True)
        sys.exit(result)
