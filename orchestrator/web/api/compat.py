"""The compatibility matrix: the JSON of ``anefarm compat --json`` (op signature × chip ×
OS build), filtered the same way."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.web import deps

router = APIRouter(tags=["compat"])


@router.get("/compat", summary="Compatibility matrix cells, filtered by chips and op type")
def compat_cells(
    session: deps.SessionDep,
    _caller: deps.Reader,
    chip: Annotated[
        list[str] | None, Query(description="only these chips: A12,A14 or repeated")
    ] = None,
    op: Annotated[str | None, Query(description="op types containing this, e.g. conv")] = None,
) -> dict[str, Any]:
    from orchestrator import catalog
    from orchestrator.bisect.compat import cells

    # An unknown chip is an error (400), not an empty matrix, as in the CLI.
    chips = {c.name.casefold() for c in catalog.chips(chip)} if chip is not None else None
    found = cells(session, op=op)
    if chips is not None:
        found = [c for c in found if str(c["chip"]).casefold() in chips]
    return {"cells": found}
