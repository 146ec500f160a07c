"""``/compare?a=…&b=…``: two runs, or two jobs (two nights of a sweep are two jobs), side by
side; a latency that moved by more than ``threshold`` (a fraction, default 10 %) and a
verdict or ANE share that changed are coloured. The numbers are the report's rows
(``report.report_row`` for a run, ``report.report_model`` for a job), so a difference seen here
is one ``anefarm report`` shows too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound, UsageError
from orchestrator.report import SETTINGS, find_job, report_model, report_row
from orchestrator.report_rows import ReportRow
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import ms, page, share
from orchestrator.web.pages.evidence import find_run

router = APIRouter()
DEFAULT_THRESHOLD = 0.10


@dataclass
class Line:
    """One compared quantity: its words for a and b, and how b differs from a."""

    label: str
    a: str
    b: str
    change: str = ""
    css: str = ""  # "" same, "diff" changed, "diff worse" / "diff better" for latencies


def _latency_line(label: str, a: float | None, b: float | None, threshold: float) -> Line:
    if a is None or b is None or a <= 0:
        return Line(label, ms(a), ms(b), css="diff" if (a is None) != (b is None) else "")
    moved = (b - a) / a
    css = ""
    if abs(moved) > threshold:
        css = "diff worse" if moved > 0 else "diff better"
    return Line(label, ms(a), ms(b), f"{moved * 100:+.1f} %", css)


def _word_line(label: str, a: Any, b: Any) -> Line:
    a_text, b_text = ("–" if a is None else str(a)), ("–" if b is None else str(b))
    return Line(label, a_text, b_text, css="diff" if a_text != b_text else "")


def row_lines(a: ReportRow, b: ReportRow, threshold: float) -> list[Line]:
    lines = [
        _word_line("model", a.model, b.model),
        _word_line("device class", a.device_class, b.device_class),
        _word_line("iOS", a.os_version, b.os_version),
        _word_line(
            "simulated",
            "SIMULATED" if a.simulated else "real",
            "SIMULATED" if b.simulated else "real",
        ),
        _word_line("status", a.status, b.status),
        _word_line("verdict", a.verdict, b.verdict),
        _word_line("share on the ANE", share(a.ane_share), share(b.ane_share)),
        _word_line("ops off the ANE", len(a.ops_off_ane), len(b.ops_off_ane)),
    ]
    for setting in SETTINGS:
        la, lb = a.latency_ms.get(setting), b.latency_ms.get(setting)
        if la is None and lb is None:
            continue
        for stat in ("p50", "p90"):
            lines.append(_latency_line(f"{setting} {stat} (ms)", getattr(la, stat, None),
                                       getattr(lb, stat, None), threshold))  # fmt: skip
    lines.append(_latency_line("cold load (ms)", a.cold_load_ms, b.cold_load_ms, threshold))
    lines.append(_latency_line("warm load (ms)", a.warm_load_ms, b.warm_load_ms, threshold))
    return lines


def job_lines(session: Session, a_ref: str, b_ref: str, threshold: float) -> dict[str, Any]:
    a, b = report_model(session, a_ref), report_model(session, b_ref)

    def keyed(rows: list[ReportRow]) -> dict[tuple[str, str], ReportRow]:
        return {(r.model, r.device_class): r for r in rows}

    ka, kb = keyed(a.rows), keyed(b.rows)
    out: list[dict[str, Any]] = []
    changed: list[tuple[Line, Line]] = []
    for key in sorted(ka.keys() | kb.keys()):
        ra, rb = ka.get(key), kb.get(key)
        la = ra.latency_ms.get("all") if ra else None
        lb = rb.latency_ms.get("all") if rb else None
        verdict = _word_line("verdict", _verdict(ra), _verdict(rb))
        latency = _latency_line("p50", la.p50 if la else None, lb.p50 if lb else None, threshold)
        out.append({"model": key[0], "device_class": key[1], "a": ra, "b": rb,
                    "verdict": verdict, "latency": latency})  # fmt: skip
        changed.append((verdict, latency))
    return {
        "a": a,
        "b": b,
        "pairs": out,
        "changed": sum(1 for v, lat in changed if v.css or lat.css),
    }


def _verdict(row: ReportRow | None) -> str | None:
    if row is None:
        return None
    if row.verdict == "PARTIAL":
        return f"PARTIAL {share(row.ane_share)}"
    return row.verdict or row.status


def _kind(session: Session, ref: str) -> str:
    try:
        find_run(session, ref)
        return "run"
    except NotFound:
        find_job(session, ref)
        return "job"


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    session: SessionDep,
    a: str | None = None,
    b: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> HTMLResponse:
    if not 0 <= threshold < 10:
        raise UsageError(
            f"threshold {threshold} out of range", hint="a fraction, e.g. 0.1 for 10 %"
        )
    context: dict[str, Any] = {
        "a_ref": a or "",
        "b_ref": b or "",
        "threshold": threshold,
        "kind": None,
    }
    if a and b:
        kinds = (_kind(session, a), _kind(session, b))
        if kinds[0] != kinds[1]:
            raise UsageError("compare two runs or two jobs, not a run with a job")
        context["kind"] = kinds[0]
        if kinds[0] == "run":
            ra, rb = (
                report_row(session, find_run(session, a)),
                report_row(session, find_run(session, b)),
            )
            context.update(ra=ra, rb=rb, lines=row_lines(ra, rb, threshold))
        else:
            context.update(job_lines(session, a, b, threshold))
    return page(request, "compare.html", title="Compare", **context)
