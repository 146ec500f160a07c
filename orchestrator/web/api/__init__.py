"""The HTTP API, ``/api/v1/…``: one module per resource, each with its ``router``.

Reads need a ``read`` token (or open reads on loopback), writes a ``submit`` token, the
tokens themselves ``admin`` (``orchestrator.web.deps.require``). docs/api.md lists every route.
"""

from fastapi import APIRouter

from orchestrator.web.api import (
    alerts,
    compat,
    devices,
    docs,
    jobs,
    runs,
    session,
    submit,
    sweeps,
    tokens,
)

router = APIRouter()
for module in (jobs, submit, runs, devices, compat, sweeps, alerts, tokens, session, docs):
    router.include_router(module.router)
