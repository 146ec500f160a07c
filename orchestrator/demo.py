"""``anefarm demo``: the sample models on a simulated multi-generation farm.

Everything it writes stays under one directory (default ``<home>/demo``): the sample
models, the report as JSON, and — unless ANEFARM_DATABASE_URL says otherwise — the
SQLite database, so a newcomer can look at all of it afterwards.

``make demo`` runs it with its own home (``.anefarm-demo`` in the checkout), so that
trying anefarm leaves the default home alone; a plain ``anefarm report`` afterwards
would look in the default home and not find the job. So the demo ends with the exact
command lines to go on with — home and executable spelled out — that work as printed
from any shell and directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console

from orchestrator import render
from orchestrator.dispatch import SubmitOptions
from orchestrator.errors import mask_url_passwords
from orchestrator.local import DEMO_FARM, ProfileRequest, profile
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.web.server import WebServer

DEMO_ITERATIONS = 30
FOLLOW_UP_TITLE = "go on with (these lines carry the demo's home; copy them as they are):"


def run_demo(
    settings: Settings,
    *,
    out: Path | None = None,
    farm: str = DEMO_FARM,
    small: bool = False,
    iterations: int = DEMO_ITERATIONS,
) -> dict[str, object]:
    """``farm``, ``small`` and ``iterations`` make a quicker demo (tests)."""
    from orchestrator import modelkit

    err = Console(stderr=True)
    out = (out or settings.home / "demo").resolve()
    samples_dir = out / "samples"
    err.print(f"writing sample models to {samples_dir} …")
    samples = modelkit.write_samples(samples_dir, small=small)
    request = ProfileRequest(
        models=samples,
        farm=farm,
        options=SubmitOptions(selector="live", iterations=iterations, warmup=3),
    )
    # soft_wrap: the farm spec is one word a person may copy; wrapped at 80 columns (a log,
    # a pipe) it read as a sentence broken before it.
    err.print(
        f"profiling {len(samples)} models on the SIMULATED farm {farm}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    report = profile(settings, request, err=err)
    render.print_table(report)
    report_path = out / "report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    err.print(f"\nreport:   {report_path}")
    err.print(f"database: {mask_url_passwords(settings.resolved_database_url)}")
    err.print(FOLLOW_UP_TITLE)
    for line in follow_up_lines(settings, str(report["job"])):
        # soft_wrap: a narrow terminal must not break a command line in two.
        err.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    job = str(report["job"])
    if os.environ.get("DEMO_SERVE") == "1":  # `DEMO_SERVE=1 make demo`
        serve_dashboard(settings, job, err).run()
    else:
        for line in dashboard_lines(settings, job):
            err.print(line, soft_wrap=True, markup=False, highlight=False)
    return report


DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8480


def dashboard_url(base: str, job: str) -> str:
    return f"{base}/jobs/{job}"


def dashboard_lines(settings: Settings, job: str) -> list[str]:
    """The last lines of the demo: how to serve the dashboard, then its URL for the job.
    Not indented like the follow-up lines: `anefarm serve` runs until Ctrl-C."""
    serve = f"{_environment(settings)} ANEFARM_OPEN_READS=1 {_anefarm()} serve"
    return [
        f"dashboard (serve it with `{serve}`, or run `DEMO_SERVE=1 make demo`):",
        dashboard_url(f"http://{DASHBOARD_HOST}:{DASHBOARD_PORT}", job),
    ]


def serve_dashboard(
    settings: Settings, job: str, err: Console, *, port: int = DASHBOARD_PORT
) -> WebServer:
    """The web app on loopback with reads open (the demo's own data, on this machine
    only), bound now; the caller runs it (until Ctrl-C) or starts it on a thread."""
    from orchestrator.errors import ServiceError
    from orchestrator.web.server import WebServer

    reads_open = settings.model_copy(update={"open_reads": True})
    try:
        server = WebServer(reads_open, DASHBOARD_HOST, port, log_requests=False)
    except ServiceError:  # 8480 taken (another anefarm serve?): any free port will do
        server = WebServer(reads_open, DASHBOARD_HOST, 0, log_requests=False)
    err.print("serving the dashboard on this machine until Ctrl-C:")
    err.print(dashboard_url(server.url, job), soft_wrap=True, markup=False, highlight=False)
    return server


def follow_up_lines(settings: Settings, job: str) -> list[str]:
    """Shell lines that look at this demo's results: report, compat, jobs."""
    run = f"{_environment(settings)} {_anefarm()}"
    return [
        f"{run} report {job}",
        f"{run} report {job} --json",
        f"{run} compat --chip A12",
        f"{run} jobs",
    ]


def _environment(settings: Settings) -> str:
    words = [f"ANEFARM_HOME={shlex.quote(str(settings.home.resolve()))}"]
    url = settings.database_url
    if url:
        # Never print a password; the person puts it back in place of ***.
        shown = mask_url_passwords(url) if urlsplit(url).password else url
        words.append(f"ANEFARM_DATABASE_URL={shlex.quote(shown)}")
    return " ".join(words)


def _anefarm() -> str:
    # The anefarm next to this interpreter (the venv's), not whichever is first on PATH;
    # abspath, not resolve: resolving the venv's python symlink would leave the venv.
    beside = Path(os.path.abspath(sys.executable)).parent / "anefarm"
    if beside.is_file():
        return shlex.quote(str(beside))
    found = shutil.which("anefarm")
    if found:
        return shlex.quote(os.path.abspath(found))
    return f"{shlex.quote(os.path.abspath(sys.executable))} -m orchestrator"
