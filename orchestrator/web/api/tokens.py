"""API tokens over HTTP, for an ``admin`` token: the list (``anefarm tokens list --json``),
a new token (shown once, in the answer) and revoking one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from orchestrator.web import deps, tokens

router = APIRouter(tags=["tokens"])


@router.get("/tokens", summary="The API tokens: name, role, created, last used")
def list_tokens(session: deps.SessionDep, _caller: deps.Admin) -> list[dict[str, Any]]:
    return [t.to_json() for t in tokens.list_tokens(session)]


@router.post("/tokens", status_code=201, summary="Make a token (its only showing)")
async def create_token(
    web: deps.ContextDep,
    _caller: deps.Admin,
    name: Annotated[str, Form(description="a name to list and revoke it by")],
    role: Annotated[str, Form(description="read, submit or admin")],
) -> JSONResponse:
    wanted = tokens.role_of(role)
    token = await run_in_threadpool(tokens.create, web.sessions, name=name, role=wanted)
    return JSONResponse({"name": name.strip(), "role": wanted.value, "token": token}, 201)


@router.delete("/tokens/{name}", status_code=204, summary="Revoke a token")
def revoke_token(name: str, web: deps.ContextDep, _caller: deps.Admin) -> Response:
    tokens.revoke(web.sessions, name)
    return Response(status_code=204)
