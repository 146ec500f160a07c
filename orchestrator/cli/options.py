"""What the job commands share: the options of submit and profile, their checks, and the
broker and database a command talks to.

The options are ``Annotated`` types, so each command states a default of its own and
``--help`` shows the same words wherever an option appears.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.errors import UsageError
from orchestrator.protocol import ComputeUnits
from orchestrator.settings import Settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
DevicesOpt = Annotated[
    str,
    typer.Option(
        "--devices",
        help="Device classes: all, A12, iPhone11,8, iPad8,*, chip>=A14 (default: those live now)",
    ),
]
UnitsOpt = Annotated[
    str,
    typer.Option(
        "--compute-units", help="Comma-separated: all,cpuAndNeuralEngine,cpuAndGPU,cpuOnly"
    ),
]
ALL_UNITS = ",".join(u.value for u in ComputeUnits)
ColdLoadOpt = Annotated[
    str,
    typer.Option(
        "--cold-load",
        help="process (first load in the runner's process) or fresh_compile (compile to a"
        " fresh path before every setting's cold load: truly cold, one compile per setting)",
    ),
]
BisectOpt = Annotated[
    bool | None,
    typer.Option(
        "--bisect/--no-bisect",
        help="Probe every op on the device (default: only when the verdict needs it)",
    ),
]
FailOnOpt = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Exit 3 on findings: never, or not-full (a verdict other than FULL)",
    ),
]


def checked_time_mode(value: str) -> str:
    if value not in {"instant", "realtime"}:
        raise UsageError(f"unknown time mode {value!r}", hint="instant or realtime")
    return value


def checked_fail_on(value: str) -> str:
    from orchestrator.progress import FAIL_ON

    if value not in FAIL_ON:
        raise UsageError(f"unknown --fail-on {value!r}", hint=f"choose {' or '.join(FAIL_ON)}")
    return value


def broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    raise UsageError(
        "no broker configured",
        hint="set ANEFARM_BROKER_URL=redis://… (or use `anefarm profile` for one machine)",
    )


def open_sessions(settings: Settings) -> Any:
    from orchestrator.store.engine import make_engine, session_factory

    return session_factory(make_engine(settings.resolved_database_url))


def submit_options(
    devices: str,
    compute_units: str,
    iterations: int,
    warmup: int,
    timeout: float,
    bisect: bool | None = None,
    cold_load: str = "process",
) -> Any:
    """The ``SubmitOptions`` of submit and profile, from their command-line values."""
    from orchestrator.dispatch import SubmitOptions, parse_compute_units

    return SubmitOptions(
        selector=devices,
        compute_units=parse_compute_units(compute_units),
        iterations=iterations,
        warmup=warmup,
        timeout_s=timeout,
        bisect="auto" if bisect is None else "always" if bisect else "never",
        cold_load=cold_load,
    )
