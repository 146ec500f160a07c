"""The HTTP API, ``/api/v1/…``: one module per resource, each with its ``router``."""

from fastapi import APIRouter

router = APIRouter()
