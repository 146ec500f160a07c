"""What every page shares: the Jinja2 templates with their filters, the navigation, and
``page()``, which renders one template with the request and the nav.

Pages are thin (house style "thin edges"): a route parses its parameters, asks the
report, bisection or store functions for the data, and renders. Numbers are formatted
here once, so a latency reads the same on every page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import case, func

from orchestrator.render.details import unit_word
from orchestrator.render.matrix import share_text
from orchestrator.store import models as db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Whether any run of a group ran on the simulated farm: max() over 1/0, as PostgreSQL has
# no max(boolean) (SQLite stores booleans as integers and would take either).
ANY_SIMULATED = func.max(case((db.Run.simulated.is_(True), 1), else_=0))

# (path, label): the nav bar of every page, in this order.
NAV = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/sweeps", "Sweeps"),
    ("/alerts", "Alerts"),
    ("/compat", "Compatibility"),
    ("/devices", "Devices"),
    ("/compare", "Compare"),
)

# A CSS class per verdict or cell label (the words carry the meaning without colour).
VERDICT_CLASS = {
    "FULL": "v-full",
    "PARTIAL": "v-partial",
    "NONE": "v-none",
    "INCONCLUSIVE": "v-inconclusive",
    "failed": "v-failed",
    "cancelled": "v-pending",
    "queued": "v-pending",
    "running": "v-pending",
    "waiting": "v-waiting",
}


def verdict_class(label: str | None) -> str:
    """'PARTIAL 67 %' → 'v-partial'; anything not decided yet → 'v-pending'."""
    if not label:
        return "v-none-run"
    return VERDICT_CLASS.get(label.split(" ")[0], "v-pending")


def ms(value: float | None) -> str:
    """A latency in ms as the text report writes it (2 decimals below 100 ms)."""
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def share(value: float | None) -> str:
    return share_text(value) or "–"


def when(value: datetime | str | None) -> str:
    """A moment as 'YYYY-MM-DD HH:MM:SS UTC' (SQLite hands back naive UTC datetimes)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    """'4 s', '3 min', '2 h', '5 d' ago."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    for limit, unit in ((120, "s"), (7200, "min"), (172800, "h")):
        if seconds < limit:
            divisor = {"s": 1, "min": 60, "h": 3600}[unit]
            return f"{seconds / divisor:.0f} {unit}"
    return f"{seconds / 86400:.0f} d"


def simulated_badge(simulated: bool | None) -> Markup:
    """SIMULATED in a badge, wherever a simulated thing is shown; nothing for real ones."""
    if simulated:
        return Markup('<span class="badge sim" title="simulated device or data">SIMULATED</span>')
    return Markup("")


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(
        ms=ms, ratio=ratio, share=share, when=when, age=age, unit=unit_word,
        verdict_class=verdict_class, sim=simulated_badge,
    )  # fmt: skip
    env.globals["nav"] = NAV
    return templates


templates = _templates()


def page(
    request: Request, name: str, *, title: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render one page; ``title`` goes into <title> and the heading."""
    return templates.TemplateResponse(
        request, name, {"title": title, **context}, status_code=status_code
    )
