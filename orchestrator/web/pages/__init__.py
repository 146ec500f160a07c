"""The dashboard's HTML pages (issue 19): filled in by the pages' own work."""

from fastapi import APIRouter

router = APIRouter()
