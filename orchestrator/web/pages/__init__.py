"""The dashboard's HTML pages (issue 19), server-rendered with Jinja2: one module per page
family, each with its ``router``; ``common`` holds the templates, filters and the nav.
Every page reads through ``deps.SessionDep``; the app includes this router behind the
``read`` rule (a token, or the sign-in cookie, unless reads are open on loopback)."""

from fastapi import APIRouter

from orchestrator.web.pages import (
    alerts,
    compare,
    compat,
    devices,
    jobs,
    overview,
    runs,
    series,
    sweeps,
)  # fmt: skip

router = APIRouter(include_in_schema=False)
for family in (overview, jobs, runs, compare, compat, devices, sweeps, series, alerts):
    router.include_router(family.router)
