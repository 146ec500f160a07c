"""Pages a browser needs before it has a token: ``/signin`` (a form that posts the token
to ``POST /api/v1/session``, which keeps it in the HttpOnly sign-in cookie) and
``error_page``, an HTML answer for a page request that failed (401 with the sign-in form,
403, 404) where an API client gets JSON.

``install(app)`` wires both into an app: ``public_router`` WITHOUT the read rule, and an
error handler that answers page requests in HTML and leaves every other request to the
handler the app already has (the API's JSON errors)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.errors import AnefarmError
from orchestrator.web.pages.common import page

public_router = APIRouter(include_in_schema=False)
TITLES = {400: "Not understood", 401: "Sign in", 403: "Not allowed", 404: "Not found"}


def wants_html(request: Request) -> bool:
    """A page request from a browser (not the API, not a script asking for JSON)."""
    path = request.url.path
    if path.startswith(("/api/", "/artifacts/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def safe_next(target: str) -> str:
    # Only a path of this site: never an open redirect to another host.
    return target if target.startswith("/") and not target.startswith("//") else "/"


def error_page(
    request: Request, status: int, message: str, hint: str | None = None
) -> HTMLResponse:
    """The HTML form of an error; a 401 carries the sign-in form back to this page."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(request, "error.html", title=TITLES.get(status, "Error"), status_code=status,
                status=status, message=message, hint=hint, next_page=safe_next(here))  # fmt: skip


@public_router.get("/signin", response_class=HTMLResponse)
def signin_page(
    request: Request, next_page: Annotated[str, Query(alias="next")] = "/"
) -> HTMLResponse:
    return page(request, "error.html", title="Sign in", status=401, next_page=safe_next(next_page),
                message="The dashboard needs an API token (`anefarm tokens create --role read`).",
                hint=None)  # fmt: skip


def install(app: FastAPI) -> None:
    """``/signin`` open to all, and HTML errors for page requests: the app's own handler
    (call this after it is registered) decides the status and words, and a browser asking
    for a page gets them as a page instead of the JSON an API client gets."""
    if getattr(app.state, "signin_installed", False):
        return  # once: a second wrapper would only parse HTML as JSON and give it back
    app.state.signin_installed = True
    app.include_router(public_router)
    for kind in (StarletteHTTPException, AnefarmError):
        previous = app.exception_handlers.get(kind)
        if previous is not None:
            app.add_exception_handler(kind, _as_html(previous))


def _as_html(previous: Callable[..., Any]) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, error: Exception) -> Response:
        answer = previous(request, error)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        if not wants_html(request) or response.status_code < 400:
            return response
        try:
            said = json.loads(bytes(response.body))["error"]
        except (ValueError, KeyError, TypeError):
            return response
        return error_page(request, response.status_code, str(said.get("message")), said.get("hint"))

    return handler
