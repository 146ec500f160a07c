"""``anefarm demo``: the sample models on a simulated multi-generation farm.

Everything it writes stays under one directory (default ``<home>/demo``): the sample
models, the report as JSON, and — unless ANEFARM_DATABASE_URL says otherwise — the
SQLite database, so a newcomer can look at all of it afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from orchestrator import render
from orchestrator.dispatch import SubmitOptions
from orchestrator.local import DEMO_FARM, ProfileRequest, profile
from orchestrator.settings import Settings

DEMO_ITERATIONS = 30


def run_demo(settings: Settings, *, out: Path | None = None) -> dict[str, object]:
    from orchestrator import modelkit

    err = Console(stderr=True)
    out = (out or settings.home / "demo").resolve()
    samples_dir = out / "samples"
    err.print(f"writing sample models to {samples_dir} …")
    samples = modelkit.write_samples(samples_dir)
    request = ProfileRequest(
        models=samples,
        farm=DEMO_FARM,
        options=SubmitOptions(selector="live", iterations=DEMO_ITERATIONS, warmup=3),
    )
    err.print(f"profiling {len(samples)} models on the SIMULATED farm {DEMO_FARM}")
    report = profile(settings, request, err=err)
    render.print_table(report)
    report_path = out / "report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    err.print(f"\nreport:   {report_path}")
    err.print(f"database: {settings.resolved_database_url}")
    err.print(f"again:    anefarm report {report['job']} [--json | --csv]")
    return report
