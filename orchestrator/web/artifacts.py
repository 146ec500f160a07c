"""``GET /artifacts/<sha256>``: the model download agents use (``agents/fetch.py``).

Agents send ``ANEFARM_ARTIFACT_TOKEN`` as a bearer token; an API token of any role works
too (a person fetching a model by hand), and so does no token when reads are open
(``deps``). Only a validated sha256 reaches the file system: the path parameter must be
64 lowercase hex digits, anything else is 404 before a path is built. Range requests
(a resumed download) and ``If-None-Match`` are answered; the ETag is the sha256 itself,
which is the content's identity.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.web import deps
from orchestrator.web.tokens import Role

router = APIRouter(tags=["artifacts"])
SHA256 = re.compile(r"[0-9a-f]{64}")


def artifact_reader(request: Request, web: deps.ContextDep, session: deps.SessionDep) -> None:
    configured = web.settings.artifact_token
    token = deps.bearer(request)
    if (
        configured
        and token is not None
        and hmac.compare_digest(token.encode(), configured.encode())
    ):
        return
    deps.require(Role.READ)(request, web, session)


@router.head("/artifacts/{sha256}", include_in_schema=False)
@router.get(
    "/artifacts/{sha256}",
    response_class=FileResponse,
    summary="Download a stored model by its sha256",
)
def get_artifact(
    sha256: str,
    request: Request,
    web: deps.ContextDep,
    _caller: Annotated[None, Depends(artifact_reader)],
) -> Response:
    if not SHA256.fullmatch(sha256):
        raise HTTPException(404, detail="not a sha256: 64 lowercase hexadecimal digits")
    store = ArtifactStore(web.settings.resolved_artifact_dir, web.settings.max_model_bytes)
    blob = store.path_of(sha256)
    if not blob.is_file():
        raise HTTPException(404, detail=f"no artifact {sha256[:12]} in this store")
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return FileResponse(blob, media_type="application/octet-stream", headers=headers)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {part.strip().removeprefix("W/") for part in header.split(",")}
