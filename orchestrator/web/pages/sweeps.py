"""``/sweeps`` (every sweep with its last night) and ``/sweeps/{name}``: the nights × series
grid, one line per (series, device class), one column per night (newest last), each cell
the night's worst check status (``check_results``, written by the night's analysis), else
the run's verdict while the night is not analysed, else why the series has no point that
night (``sweep_missing``). A line opens its series' time series (``/series/…``)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.alerts.report import nights_of
from orchestrator.errors import NotFound
from orchestrator.store import models as db
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import page
from orchestrator.web.pages.overview import last_nights

router = APIRouter()
NIGHTS_SHOWN = 30
# Worst first: the status a cell shows when the night's checks disagree.
STATUS_RANK = (
    "REGRESSION",
    "FAILED",
    "MISSING",
    "UNKNOWN",
    "IMPROVEMENT",
    "INSUFFICIENT_DATA",
    "SAME",
)
STATUS_CLASS = {
    "REGRESSION": "v-none", "FAILED": "v-failed", "MISSING": "v-waiting",
    "UNKNOWN": "v-inconclusive", "IMPROVEMENT": "v-full", "INSUFFICIENT_DATA": "v-pending",
    "SAME": "v-same",
}  # fmt: skip


def find_sweep(session: Session, name: str) -> db.Sweep:
    sweep = session.scalars(select(db.Sweep).where(db.Sweep.name == name)).one_or_none()
    if sweep is None:
        raise NotFound(f"no sweep {name!r}", hint="`anefarm sweep list` lists the sweeps")
    return sweep


@dataclass
class Cell:
    word: str
    css: str
    title: str = ""
    run: str | None = None


@dataclass
class Line:
    series: str
    device_class: str
    simulated: bool = False
    cells: dict[uuid.UUID, Cell] = field(default_factory=dict)


def worst(statuses: list[str]) -> str:
    return min(
        statuses, key=lambda s: STATUS_RANK.index(s) if s in STATUS_RANK else len(STATUS_RANK)
    )


def sweep_grid(session: Session, sweep: db.Sweep, shown: int = NIGHTS_SHOWN) -> dict[str, Any]:
    nights: list[tuple[date, uuid.UUID]] = sorted(nights_of(session, sweep).items())[-shown:]
    ids = [job_id for _, job_id in nights]
    lines: dict[tuple[str, str], Line] = {}

    def line(series: str, device_class: str) -> Line:
        return lines.setdefault((series, device_class), Line(series, device_class))

    if ids:
        verdicts = dict(
            session.execute(
                select(db.Verdict.run_id, db.Verdict.verdict)
                .join(db.Run, db.Run.id == db.Verdict.run_id)
                .where(db.Run.job_id.in_(ids))
            ).all()
        )
        for run in session.scalars(
            select(db.Run).where(
                db.Run.job_id.in_(ids), db.Run.series.is_not(None), db.Run.purpose == "user"
            )
        ):
            here = line(str(run.series), run.device_class)
            here.simulated = here.simulated or bool(run.simulated)
            verdict = verdicts.get(run.id)
            word = str(verdict) if verdict else str(run.status)
            here.cells[run.job_id] = Cell(word, _verdict_css(word), "not analysed yet", str(run.id))
        checks: dict[tuple[uuid.UUID, str, str], list[db.CheckResult]] = defaultdict(list)
        for check in session.scalars(select(db.CheckResult).where(db.CheckResult.job_id.in_(ids))):
            checks[(check.job_id, check.series, check.device_class)].append(check)
        for (job_id, series, device_class), found in checks.items():
            status = worst([c.status for c in found])
            here = line(series, device_class)
            here.simulated = here.simulated or any(c.simulated for c in found)
            said = "; ".join(
                f"{c.check}: {c.message}" for c in found if c.status == status and c.message
            )
            run_id = here.cells[job_id].run if job_id in here.cells else None
            here.cells[job_id] = Cell(status, STATUS_CLASS.get(status, "v-pending"), said, run_id)
        for missing in session.scalars(
            select(db.SweepMissing).where(db.SweepMissing.job_id.in_(ids))
        ):
            classes = [missing.device_class] if missing.device_class else sorted(
                {cls for (series, cls) in lines if series == missing.series}
            ) or ["—"]  # fmt: skip
            for cls in classes:
                here = line(missing.series, cls)
                if missing.job_id not in here.cells or here.cells[missing.job_id].word in (
                    "failed",
                    "cancelled",
                ):
                    here.cells[missing.job_id] = Cell(
                        "MISSING", "v-waiting", f"{missing.kind}: {missing.reason}"
                    )
    return {
        "nights": nights,
        "lines": [lines[k] for k in sorted(lines)],
        "units": _units(sweep),
    }


def _units(sweep: db.Sweep) -> list[str]:
    units = (sweep.definition or {}).get("compute_units")
    return [str(u) for u in units] if units else ["all"]


def _verdict_css(word: str) -> str:
    from orchestrator.web.pages.common import verdict_class

    return verdict_class(word)


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request, session: SessionDep) -> HTMLResponse:
    return page(request, "sweeps.html", title="Sweeps", nights=last_nights(session))


@router.get("/sweeps/{name}", response_class=HTMLResponse)
def sweep_page(
    request: Request, name: str, session: SessionDep, nights: int = NIGHTS_SHOWN
) -> HTMLResponse:
    sweep = find_sweep(session, name)
    grid = sweep_grid(session, sweep, max(1, min(nights, 366)))
    return page(request, "sweep.html", title=f"Sweep {sweep.name}", sweep=sweep,
                status_class=STATUS_CLASS, **grid)  # fmt: skip
