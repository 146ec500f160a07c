"""The dashboard's sign-in: ``POST /api/v1/session`` with a token (form field ``token``)
checks it and keeps it in an HttpOnly, SameSite=Strict cookie, so that pages (and their
forms) work in a browser, which cannot send an Authorization header with a link.
``DELETE /api/v1/session`` (or ``POST /api/v1/session/end`` from a plain form) forgets it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from orchestrator.web import deps, tokens

router = APIRouter(tags=["session"])
WEEK_S = 7 * 24 * 3600


def safe_next(target: str) -> str:
    # Only a path of this site: never an open redirect to another host.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/session", summary="Sign the browser in with an API token (sets a cookie)")
def sign_in(
    request: Request,
    session: deps.SessionDep,
    token: Annotated[str, Form(description="an API token")],
    next_page: Annotated[str, Form(alias="next", description="where to go next")] = "/",
) -> Response:
    found = tokens.lookup(session, token.strip())
    if found is None:
        raise deps.unauthorized("unknown or revoked API token")
    response = RedirectResponse(safe_next(next_page), status_code=303)
    response.set_cookie(
        deps.COOKIE,
        token.strip(),
        max_age=WEEK_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.delete("/session", status_code=204, summary="Sign the browser out")
def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(deps.COOKIE)
    return response


@router.post("/session/end", summary="Sign the browser out (from a plain HTML form)")
def sign_out_form() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(deps.COOKIE)
    return response
