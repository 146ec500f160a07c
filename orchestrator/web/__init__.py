"""The web app (issue 19): the HTTP API under ``/api/v1``, the artifact download agents
use (``/artifacts/<sha256>``) and the dashboard's pages, one FastAPI app served by uvicorn
(``anefarm serve``, or inside the coordinator with ``anefarm coordinator --serve``).

``app.create_app`` wires them; ``deps`` holds what a route asks for (a database session,
the settings, a caller with a role); ``tokens`` the API tokens; ``server`` runs uvicorn.
"""
