"""Browser tests: a real uvicorn server on a free loopback port (in a thread of this
process) over one SQLite database holding a finished simulated job, a job still running
(``SimulatedJob``: the test finishes its batches while the page is open) and a sweep with
an untriaged alert; Playwright drives Debian's chromium (``/usr/bin/chromium``, never a
downloaded browser; docs/services.md "Browser"). Without chromium or Playwright the tests
skip locally and fail in CI, like every other service."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.web.app import create_app
from tests.services.common import free_port, missing_service
from tests.web.pages import synthetic
from tests.web.pages.conftest import pick_models
from tests.web.pages.simjob import SimulatedJob

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"


@dataclass
class Site:
    url: str
    finished: SimulatedJob
    running: SimulatedJob
    running_job: str
    sweep: synthetic.SweepRows
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, samples: dict[str, Path]
) -> Iterator[Site]:
    import uvicorn

    tmp = tmp_path_factory.mktemp("site")
    finished = SimulatedJob.start(tmp / "home", f"{redis_server}/0")
    finished.submit(pick_models(samples, tmp / "models"))
    finished.finish_all()
    # The running job shares the database (same home): its batches wait for the test.
    running = SimulatedJob.start(tmp / "home", f"{redis_server}/0")
    running_job = running.submit(pick_models(samples, tmp / "m2", ("conv10x10.mlpackage",)))
    with finished.sessions() as session:
        rows = synthetic.sweep(session, start=synthetic.START)
        session.expunge_all()
    settings = finished.settings.model_copy(update={"open_reads": True})
    app = create_app(settings, sessions=finished.sessions, bound_host="127.0.0.1")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", finished, running, running_job, rows)
    server.should_exit = True
    thread.join(timeout=10)
    running.close()
    finished.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        missing_service(
            "no chromium (apt-get install chromium; `make system-deps` does it as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("no playwright (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page whose console errors, page errors, failed requests and HTTP errors are kept."""

    page: Any
    problems: list[str]

    def goto(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="networkidle")
        assert response is not None and response.ok, (url, response and response.status)
        return response

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    # Nothing but this server: a page that reaches for the network (a CDN) fails here.
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(site.url) or route.request.url.startswith("data:")
            else route.abort()
        ),
    )
    yield Watched(page, problems)
    context.close()
