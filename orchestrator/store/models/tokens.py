"""The HTTP API's tokens (issue 19), stored as sha256 only."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.models.base import TS, Base, _enum_of


class ApiRole(StrEnum):
    """What an HTTP API token may do (issue 19), in order: each includes the ones before."""

    READ = "read"
    SUBMIT = "submit"
    ADMIN = "admin"


class ApiToken(Base):
    """A token of the HTTP API (``orchestrator.web.tokens``): only the sha256 of the
    token is kept, so a copy of the database lets nobody in."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[ApiRole] = mapped_column(_enum_of(ApiRole, 16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
