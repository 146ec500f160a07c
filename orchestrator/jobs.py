"""The jobs of one database, newest first, with their runs counted by status (``anefarm
jobs``): how a person finds the id that ``status``, ``report`` and ``cancel`` take.

Two queries whatever the number of jobs: the page of jobs, then one GROUP BY over their
runs. User runs and the bisection's probe runs are counted apart, since a job's probes
can outnumber its user runs many times over.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from orchestrator.store import models as db
from orchestrator.store.engine import database_error, is_missing_schema

DEFAULT_LIMIT = 20


@dataclass
class JobList:
    """A page of jobs (newest first) and how many jobs the database holds in all."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "total": self.total}


def list_jobs(session: Session, *, limit: int = DEFAULT_LIMIT) -> JobList:
    """The newest ``limit`` jobs. A database without tables (a fresh home) has no jobs:
    listing must not need the schema, nor create it behind a person's back."""
    try:
        return _list(session, limit)
    except SQLAlchemyError as error:
        if is_missing_schema(error):
            session.rollback()  # PostgreSQL: the failed statement aborted the transaction
            return JobList()
        raise database_error(error, session.get_bind().engine.url) from error


def _list(session: Session, limit: int) -> JobList:
    total = session.scalar(select(func.count()).select_from(db.Job)) or 0
    # The id breaks ties: jobs submitted within one clock tick keep a stable order.
    newest = select(db.Job).order_by(db.Job.created_at.desc(), db.Job.id.desc()).limit(limit)
    jobs = list(session.scalars(newest))
    counts: dict[Any, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    if jobs:
        grouped = (
            select(db.Run.job_id, db.Run.purpose, db.Run.status, func.count())
            .where(db.Run.job_id.in_([job.id for job in jobs]))
            .group_by(db.Run.job_id, db.Run.purpose, db.Run.status)
        )
        for job_id, purpose, status, n in session.execute(grouped):
            counts[job_id][str(purpose)][str(status)] = int(n)
    return JobList([_row(job, counts[job.id]) for job in jobs], int(total))


def _row(job: db.Job, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    user = dict(sorted(counts.get("user", {}).items()))
    probe = dict(sorted(counts.get("probe", {}).items()))
    return {
        "job": str(job.id),
        "created_at": _utc(job.created_at).isoformat(),
        "status": str(job.status),
        "selector": job.selector,
        "purpose": str(job.purpose),
        "runs": sum(user.values()),
        "by_status": user,
        "probe_runs": sum(probe.values()),
        "probe_by_status": probe,
    }


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC), PostgreSQL aware ones in the
    # session's time zone: one form for both.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
