"""``create_app(settings)``: the one FastAPI app of anefarm (API, artifacts, pages).

Errors leave as JSON ``{"error": {"kind", "message", "hint"}}`` (the shape of the CLI's
``--json`` errors), with the status that fits: anefarm's own errors are mapped by kind
(not found 404, bad input 400, a database or broker that is away 503), FastAPI's request
validation is 422 with each problem named. No page or document loads anything from the
network: the interactive /docs page is off (its assets come from a CDN); the OpenAPI
document is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.errors import AnefarmError, cause_chain, mask
from orchestrator.settings import Settings
from orchestrator.store.engine import database_error
from orchestrator.web.deps import WebContext, require
from orchestrator.web.tokens import Role

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
DATABASE_MODULES = {"sqlalchemy", "psycopg", "sqlite3"}
BROKER_MODULES = {"redis", "kombu", "celery", "amqp"}
STATUS_OF_KIND = {
    "not_found": 404,
    "usage": 400,
    "config": 400,
    "model": 400,
    "artifact": 400,
    "store": 503,
    "service": 503,
    "night_exists": 409,
}


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    bound_host: str | None = None,
) -> FastAPI:
    """The app. ``sessions`` defaults to an engine on the settings' database (disposed
    when the app stops); ``bound_host`` is the address uvicorn listens on, which decides
    whether reads may be open (``deps``)."""
    from orchestrator.ops import metrics_route
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.web import api, artifacts, pages
    from orchestrator.web.pages import signin

    engine = None
    if sessions is None:
        engine = make_engine(settings.resolved_database_url)
        sessions = session_factory(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="anefarm",
        summary="Whether Core ML models run on the Apple Neural Engine, across iPhone generations",
        version=_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        lifespan=lifespan,
    )
    app.state.web = WebContext(settings=settings, sessions=sessions, bound_host=bound_host)
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(artifacts.router)
    # GET /metrics (Prometheus, orchestrator/ops/metrics.py): a read, like the pages.
    app.include_router(metrics_route.router(), dependencies=[Depends(require(Role.READ))])
    # Pages are reads: a token (header or the sign-in cookie) unless reads are open.
    app.include_router(pages.router, dependencies=[Depends(require(Role.READ))])
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_handlers(app)
    # After the JSON handlers: /signin (open to all) and HTML errors for page requests.
    signin.install(app)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anefarm")
    except PackageNotFoundError:
        return "0"


def error_body(kind: str, message: str, hint: str | None = None) -> dict[str, object]:
    return {"error": {"kind": kind, "message": mask(message), "hint": hint}}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AnefarmError)
    async def anefarm_error(_request: Request, error: AnefarmError) -> JSONResponse:
        status = STATUS_OF_KIND.get(error.kind, 500)
        return JSONResponse(error_body(error.kind, error.message, error.hint), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large"}
        return JSONResponse(
            error_body(kind.get(error.status_code, "http"), str(error.detail)),
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so the server's log keeps the traceback.
        for link in cause_chain(error):
            module = type(link).__module__.split(".")[0]
            if module in DATABASE_MODULES:
                url = request.app.state.web.settings.resolved_database_url
                found = database_error(link, url)
                return JSONResponse(error_body(found.kind, found.message, found.hint), 503)
            if module in BROKER_MODULES:
                message = f"cannot reach the broker: {str(link).strip().splitlines()[0] if str(link).strip() else type(link).__name__}"
                hint = "is Redis running at ANEFARM_BROKER_URL? the request can be sent again"
                return JSONResponse(error_body("service", message, hint), 503)
        message = f"unexpected {type(error).__name__} on the server"
        return JSONResponse(error_body("error", message, "the server's log has the details"), 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return JSONResponse(error_body("usage", problems), status_code=422)
