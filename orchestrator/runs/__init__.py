"""The life of a run and of a job (issue 16 moves the whole state machine here).

For now: which run statuses are final. Dispatch (cancel), ingest and the reaper all ask,
and none of them should have to import another to know.
"""

from __future__ import annotations

from orchestrator.store import models as db

FINAL = frozenset({db.RunStatus.SUCCEEDED, db.RunStatus.FAILED, db.RunStatus.CANCELLED})
