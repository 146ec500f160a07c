"""``GET /metrics`` for the web app (the figures: orchestrator/ops/metrics.py).

No ``from __future__ import annotations`` here: FastAPI reads the endpoint's ``Request``
annotation at run time to inject it.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.ops.metrics import render


def router() -> APIRouter:
    """The route; the app adds its read rule (an API token of any role, or none where
    reads are open) when it includes it."""
    routes = APIRouter()

    @routes.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        web = request.app.state.web
        body, content_type = render(web.settings, web.sessions)
        return Response(body, media_type=content_type)

    return routes
