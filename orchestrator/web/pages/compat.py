"""``/compat``: the compatibility matrix (``bisect.compat.cells``: op signature × chip ×
OS build, simulated apart from real) laid out as a grid — one line per op signature, one
column per (chip, OS build) — filterable by chip, op type, OS and simulated/real through
query parameters, so a filtered view is a link to share."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from orchestrator.bisect.compat import cells
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import page

router = APIRouter()
KINDS = ("", "real", "simulated")


def compat_grid(
    session: Session, *, chip: str | None, op: str | None, os: str | None, kind: str | None
) -> dict[str, Any]:
    found = cells(session, chip=chip or None, op=op or None)
    if os:
        found = [c for c in found if os in (c["os_version"] or "") or os == c["os_build"]]
    if kind in ("real", "simulated"):
        found = [c for c in found if c["simulated"] == (kind == "simulated")]
    columns: dict[tuple[str, str, str, bool], dict[str, Any]] = {}
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in found:
        key = (cell["chip"], cell["os_build"], cell["runner_version"], cell["simulated"])
        columns.setdefault(key, {"chip": cell["chip"], "os_version": cell["os_version"],
                                 "os_build": cell["os_build"], "runner": cell["runner_version"],
                                 "simulated": cell["simulated"]})  # fmt: skip
        line = lines.setdefault(
            (cell["op_type"] or "", cell["signature"]),
            {"op_type": cell["op_type"], "signature": cell["signature"], "cells": {}},
        )
        line["cells"][key] = cell
    ordered = sorted(columns)
    return {
        "cells": found,
        "columns": [(k, columns[k]) for k in ordered],
        "lines": [lines[k] for k in sorted(lines)],
    }


@router.get("/compat", response_class=HTMLResponse)
def compat_page(
    request: Request,
    session: SessionDep,
    chip: str | None = None,
    op: str | None = None,
    os: str | None = None,
    kind: str | None = None,
) -> HTMLResponse:
    grid = compat_grid(session, chip=chip, op=op, os=os, kind=kind)
    filters = {"chip": chip or "", "op": op or "", "os": os or "", "kind": kind or ""}
    return page(request, "compat.html", title="Compatibility matrix", filters=filters,
                kinds=KINDS, **grid)  # fmt: skip
