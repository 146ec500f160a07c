"""What routes ask for: the settings, a database session, and a caller with a role.

``require(role)`` is the one authentication rule of the app:

- a request with ``Authorization: Bearer <token>`` is the token's; an unknown token is
  401 (with ``WWW-Authenticate``), a known one below the role 403;
- without a token, a read (``require(Role.READ)``) is allowed only when the server is
  bound to a loopback address and ``ANEFARM_OPEN_READS=1``; anything else is 401.

Tokens are never logged: they travel in a header, which uvicorn's access log does not
print, and no message of ours repeats one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ServiceError
from orchestrator.settings import Settings
from orchestrator.web import tokens
from orchestrator.web.tokens import Role

if TYPE_CHECKING:
    import redis
    from celery import Celery

REALM = 'Bearer realm="anefarm"'
# Only so that the OpenAPI document says how to authenticate (scheme "bearer", the role
# as its scope); ``bearer`` below reads the header itself, and the sign-in cookie.
BEARER = HTTPBearer(auto_error=False, description="An API token: `anefarm tokens create`")
# The dashboard's login cookie: HttpOnly (no script reads it) and SameSite=Strict (no
# other site's page can make the browser send it, so a form elsewhere cannot write here).
COOKIE = "anefarm_token"
# last_used_at is written at most this often per token: a busy reader must not turn every
# GET into a database write.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass
class WebContext:
    """What the app was created with (``app.state.web``)."""

    settings: Settings
    sessions: sessionmaker[Session]
    # The address uvicorn listens on (None: not known, e.g. under a test client): reads
    # without a token need a loopback one.
    bound_host: str | None = None
    _redis: redis.Redis | None = field(default=None, repr=False)
    _celery: Celery | None = field(default=None, repr=False)

    @property
    def open_reads(self) -> bool:
        return self.settings.open_reads and is_loopback(self.bound_host)

    def broker_url(self) -> str:
        if not self.settings.broker_url:
            raise ServiceError(
                "this server has no broker configured",
                hint="set ANEFARM_BROKER_URL=redis://… where the server runs",
            )
        return self.settings.broker_url

    def redis(self) -> redis.Redis:
        """The live state's Redis (the broker's), one client for the app."""
        if self._redis is None:
            from orchestrator.protocol import livestate

            self._redis = livestate.connect(self.broker_url())
        return self._redis

    def celery(self) -> Celery:
        """The Celery app submissions publish with, made once."""
        if self._celery is None:
            from orchestrator.protocol.transport import create_app

            self._celery = create_app(self.settings)
        return self._celery


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Caller:
    """Who is asking: a token's name and role, or nobody (an open read)."""

    name: str | None
    role: Role | None


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


def get_settings(web: Annotated[WebContext, Depends(context)]) -> Settings:
    return web.settings


def get_session(web: Annotated[WebContext, Depends(context)]) -> Iterator[Session]:
    """A session for one request; routes that write commit themselves."""
    with web.sessions() as session:
        yield session


def bearer(request: Request) -> str | None:
    """The caller's token: the Authorization header (API clients, agents), else the
    dashboard's cookie (a browser cannot add a header to a link; ``api/session.py``)."""
    header = request.headers.get("authorization")
    if header is None:
        return request.cookies.get(COOKIE) or None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("the Authorization header must be `Bearer <token>`")
    return value.strip()


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": REALM})


def require(role: Role) -> Callable[..., Caller]:
    """A dependency that lets in callers holding ``role`` (or a higher one)."""

    def check(
        request: Request,
        web: Annotated[WebContext, Depends(context)],
        session: Annotated[Session, Depends(get_session)],
        # A default, not Annotated: the annotation is a string here, and `role` is local.
        _documented: object = Security(BEARER, scopes=[role.value]),
    ) -> Caller:
        token = bearer(request)
        if token is None:
            if role == Role.READ and web.open_reads:
                return Caller(None, None)
            raise unauthorized(
                "this needs an API token (`anefarm tokens create`), sent as"
                " `Authorization: Bearer <token>`"
            )
        found = tokens.lookup(session, token)
        if found is None:
            raise unauthorized("unknown or revoked API token")
        if not tokens.allows(found.role, role):
            raise HTTPException(
                403, detail=f"the token {found.name!r} has role {found.role}; this needs {role}"
            )
        now = datetime.now(UTC)
        if found.last_used_at is None or now - _utc(found.last_used_at) > TOUCH_EVERY:
            tokens.touch(session, found.name, now)
            session.commit()
        return Caller(found.name, found.role)

    return check


def _utc(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ContextDep = Annotated[WebContext, Depends(context)]
Reader = Annotated[Caller, Depends(require(Role.READ))]
Submitter = Annotated[Caller, Depends(require(Role.SUBMIT))]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]
