"""``/runs/{id}``: one run's evidence (``evidence.run_evidence``) with its latency chart."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from orchestrator.web.charts import SETTING_COLOURS, latency_chart, sample_trace
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import page
from orchestrator.web.pages.evidence import PROVENANCE, diagnostics_sections, run_evidence

router = APIRouter()


@router.get("/runs/{run_ref}", response_class=HTMLResponse)
def run_page(request: Request, run_ref: str, session: SessionDep) -> HTMLResponse:
    found = run_evidence(session, run_ref)
    row = found.row
    title = f"{row.model} on {row.device_name or row.device_class}"
    if found.run.purpose == "probe":
        title = f"Probe {found.run.probe_signature or ''} on {row.device_class}"
    return page(
        request,
        "run.html",
        title=title,
        ev=found,
        row=row,
        chart=latency_chart(found.samples, title="latency per prediction (ms)"),
        trace=sample_trace(found.samples),
        colours=SETTING_COLOURS,
        provenance=PROVENANCE,
        diagnostics=diagnostics_sections,
    )
