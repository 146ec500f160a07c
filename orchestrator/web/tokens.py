"""API tokens: roles read < submit < admin, stored as the sha256 of the token.

A token is 32 random bytes (``secrets.token_urlsafe``) behind the prefix ``anefarm_``, so
a leaked one is easy to recognise in a log or a paste. Its sha256 is what the database
keeps: a high-entropy secret needs no slow hash, and a copy of the database lets nobody
in. The token itself is shown once, by ``anefarm tokens create``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import NotFound, UsageError
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope

Role = db.ApiRole
PREFIX = "anefarm_"
ROLE_ORDER = (Role.READ, Role.SUBMIT, Role.ADMIN)
NAME_MAX = 128


def role_of(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise UsageError(f"unknown role {text!r}", hint="choose read, submit or admin") from None


def allows(held: Role, needed: Role) -> bool:
    """Each role includes the ones before it (read < submit < admin)."""
    return ROLE_ORDER.index(held) >= ROLE_ORDER.index(needed)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def _info(row: db.ApiToken) -> TokenInfo:
    return TokenInfo(row.name, row.role, row.created_at, row.last_used_at)


def create(sessions: sessionmaker[Session], *, name: str, role: Role) -> str:
    """A new token: stored hashed, returned once."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise UsageError(f"a token name needs 1 to {NAME_MAX} characters")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with session_scope(sessions) as session:
            session.add(
                db.ApiToken(
                    name=name, role=role, token_sha256=digest(token), created_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        raise UsageError(
            f"a token named {name!r} exists already",
            hint=f"`anefarm tokens revoke {name}` first, or choose another name",
        ) from None
    return token


def list_tokens(session: Session) -> list[TokenInfo]:
    rows = session.scalars(select(db.ApiToken).order_by(db.ApiToken.name))
    return [_info(row) for row in rows]


def revoke(sessions: sessionmaker[Session], name: str) -> None:
    with session_scope(sessions) as session:
        gone = session.execute(delete(db.ApiToken).where(db.ApiToken.name == name)).rowcount  # type: ignore[attr-defined]
    if not gone:
        raise NotFound(f"no token named {name!r}", hint="`anefarm tokens list` shows them")


def lookup(session: Session, token: str) -> TokenInfo | None:
    """The token's row, or None. The database finds the row by the token's sha256; the
    comparison that decides is in constant time, so timing says nothing of the token."""
    wanted = digest(token)
    row = session.scalars(select(db.ApiToken).where(db.ApiToken.token_sha256 == wanted)).first()
    if row is None or not hmac.compare_digest(row.token_sha256, wanted):
        return None
    return _info(row)


def touch(session: Session, name: str, when: datetime) -> None:
    """Remember when a token was last used (shown by ``tokens list``)."""
    row = session.scalars(select(db.ApiToken).where(db.ApiToken.name == name)).first()
    if row is not None:
        row.last_used_at = when
