"""Waiting for a job, and the exit code a CI gates on.

``wait_for_job`` shows progress on stderr: a live bar on a terminal, and one plain line
per change otherwise (a CI log, a pipe), so a long wait is never silent. It returns when
the job is done or the time is up; it never decides the exit code. ``exit_code`` does,
from the report, with the same scheme for every command (README "Exit codes")::

    0    the job finished and every run succeeded
    3    findings: a verdict other than FULL with ``--fail-on not-full``
    4    some runs failed, were cancelled, or never ran (still waiting or queued)
    1    error           2 usage           130 interrupted
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.report import job_status

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 3, 4, 130
FAIL_ON = ("never", "not-full")
UNFINISHED = {"waiting", "queued", "running"}


def exit_code(report: dict[str, Any], *, fail_on: str = "never") -> int:
    """The job's exit code from its report (user runs; probes never fail a job)."""
    rows = report["rows"]
    if not rows or any(row["status"] != "succeeded" for row in rows):
        return EXIT_INCOMPLETE
    if fail_on == "not-full" and any(row["verdict"] != "FULL" for row in rows):
        return EXIT_FINDINGS
    return EXIT_OK


def summary(status: dict[str, Any]) -> str:
    """``job 1f2e…: running, 12/40 runs finished (queued: 20, succeeded: 12, waiting: 8)``."""
    counts = status["by_status"]
    finished = sum(v for k, v in counts.items() if k not in UNFINISHED)
    parts = ", ".join(f"{k}: {v}" for k, v in counts.items())
    waiting = "; ".join(f"{cls} since {since} UTC" for cls, since in status["waiting"].items())
    line = f"job {status['job']}: {status['status']}, {finished}/{status['runs']} runs finished"
    if parts:
        line += f" ({parts})"
    if waiting:
        line += f"; waiting for a device: {waiting}"
    return line


def wait_for_job(
    sessions: Any,
    job_id: str,
    timeout_s: float,
    err: Console,
    *,
    check: Callable[[], None] | None = None,
    poll_s: float = 0.25,
) -> bool:
    """Show progress until the job is done (True) or ``timeout_s`` passes (False).
    ``check`` is called every poll (e.g. to notice a child process that died)."""
    deadline = time.monotonic() + timeout_s
    if err.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("runs", total=None)

            def bar(status: dict[str, Any]) -> None:
                finished = sum(v for k, v in status["by_status"].items() if k not in UNFINISHED)
                waiting = status["by_status"].get("waiting", 0)
                label = f"runs ({status['status']}" + (f", {waiting} waiting" if waiting else "")
                progress.update(task, total=status["runs"], completed=finished,
                                description=label + ")")  # fmt: skip

            return _poll(sessions, job_id, deadline, bar, check, poll_s)
    last: list[str] = [""]

    def line_per_change(status: dict[str, Any]) -> None:
        line = summary(status)
        if line != last[0]:  # one line per change: a CI log reads like a story
            err.print(line, highlight=False, soft_wrap=True)
            last[0] = line

    return _poll(sessions, job_id, deadline, line_per_change, check, poll_s)


def _poll(
    sessions: Any,
    job_id: str,
    deadline: float,
    show: Callable[[dict[str, Any]], None],
    check: Callable[[], None] | None,
    poll_s: float,
) -> bool:
    while True:
        status = _status(sessions, job_id)
        show(status)
        if status["done"]:
            return True
        if check is not None:
            check()
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


def _status(sessions: Any, job_id: str) -> dict[str, Any]:
    with sessions() as session:
        return job_status(session, job_id)
