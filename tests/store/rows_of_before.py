"""Rows as code before a revision wrote them, for the tests that upgrade and downgrade a
database holding them: plain values through Core on the tables' own names, since the ORM
maps today's columns, which the revision under test may not have yet."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from orchestrator.store import models as db


def insert_model_and_job(
    conn: sa.Connection, *, sha: str, job_id: uuid.UUID, at: datetime, status: str, bisect: str
) -> None:
    """A 3-byte model file named after its format and a user job on A12 that uses it."""
    tables = db.Base.metadata.tables
    conn.execute(tables["models"].insert().values(
        sha256=sha, filename="m.mlmodel", format="mlmodel", size_bytes=3, created_at=at))  # fmt: skip
    conn.execute(tables["jobs"].insert().values(
        id=job_id, created_at=at, status=status, selector="A12", spec={}, purpose="user",
        bisect=bisect))  # fmt: skip
