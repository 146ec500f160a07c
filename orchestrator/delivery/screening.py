"""Screening a result that arrives from an agent, before anything of it is stored.

Results come from agents, i.e. from other hosts: untrusted input (issue 20). One larger
than ``MAX_RESULT_BYTES`` is refused before it is validated (the protocol's own bounds —
100,000 samples per setting, 200,000 plan ops — stay well below it); a refused payload is
kept for diagnosis only as its first ``RAW_KEPT_BYTES``, never as results
(``orchestrator.ingest``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from orchestrator.protocol import RunBatchResult

MAX_RESULT_BYTES = 64 * 1024**2
RAW_KEPT_BYTES = 64 * 1024


def measured(payload: Any) -> tuple[str, str | None]:
    """The payload as JSON text, and why it is refused before validation (None if not)."""
    try:
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    except (RecursionError, ValueError, TypeError) as error:
        return "", f"not serialisable as JSON ({type(error).__name__})"
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_RESULT_BYTES:
        return text, f"{size} bytes, over the {MAX_RESULT_BYTES}-byte limit"
    return text, None


def valid(payload: Any) -> RunBatchResult | None:
    """The result if it is within bounds and validates, else None (refused on its own)."""
    if measured(payload)[1] is not None:
        return None
    try:
        return RunBatchResult.model_validate(payload)
    except ValidationError:
        return None


def problems(error: ValidationError) -> str:
    return f"{error.error_count()} problem(s): " + "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
    )


def ids_of(payload: Any) -> tuple[UUID | None, int | None]:
    if not isinstance(payload, dict):
        return None, None
    try:
        run_id = UUID(str(payload.get("run_id")))
    except ValueError:
        return None, None
    attempt = payload.get("attempt")
    return run_id, attempt if isinstance(attempt, int) else None
