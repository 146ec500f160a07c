"""Server-side render times of the dashboard's heaviest pages (issue 19 item 7).

Rows are written straight into a SQLite database (tests/web/pages/synthetic.py): a finished
job of 200 models × 12 device classes, a sweep of 365 nights (2 series × 2 classes, with
its latency checks and an alert), and 50 sweeps of 7 nights each for the overview. Each
page is fetched through the real app (FastAPI's TestClient: routing, auth, queries,
Jinja2, no network), a few times to warm up, then timed: the median and best wall time
and the median CPU time of the process are printed beside the goal. Goals: job page and series page ≤ 300 ms, overview ≤ 200 ms.

    .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.web.pages.synthetic

from fastapi.testclient import TestClient

from orchestrator.settings import load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from orchestrator.web.app import create_app
from tests.web.pages import synthetic

WARM = 2
TIMED = 9


def timed(
    client: TestClient, path: str, headers: dict[str, str] | None = None, status: int = 200
) -> tuple[float, float, float, int]:
    """Median and best wall time, median CPU time of this process (the server runs in it:
    on a loaded machine the wall time says more about the neighbours), size in bytes."""
    for _ in range(WARM):
        assert client.get(path, headers=headers).status_code == status, path
    walls, cpus = [], []
    size = 0
    for _ in range(TIMED):
        start, cpu = time.perf_counter(), time.process_time()
        response = client.get(path, headers=headers)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == status, path
        size = len(response.content)
    return statistics.median(walls), min(walls), statistics.median(cpus), size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'anefarm.db'}"
        upgrade(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        started = time.perf_counter()
        with sessions() as session:
            job = synthetic.big_job(session, models=200, classes=12)
            year = synthetic.sweep(session, "yearly", nights=365, regression_from=300,
                                   os_upgrade_at=300)  # fmt: skip
            for index in range(49):
                synthetic.sweep(session, f"sweep-{index:02d}", nights=7, series=("conv",),
                                classes=("iPhone11,8",), regression_from=None,
                                start=synthetic.START + timedelta(days=400 + index))  # fmt: skip
        print(f"rows written in {time.perf_counter() - started:.1f} s (SQLite, {url})")
        settings = load_settings(home=Path(tmp), database_url=url, open_reads=True)
        app = create_app(settings, sessions=sessions, bound_host="127.0.0.1")
        cases = [
            ("job page, 200 models × 12 device classes", f"/jobs/{job}", 300),
            ("job page live fragment (polled every 2 s)", f"/jobs/{job}/live", 300),
            ("  the same poll, job unchanged (304)", f"/jobs/{job}/live", 300),
            (f"series page, 365 nights ({year.sweep.name})", "/series/yearly/conv/iPhone11,8?units=all", 300),
            ("sweep grid, 2 series × 2 classes, last 30 nights", "/sweeps/yearly", 300),
            ("overview, 50 sweeps", "/", 200),
        ]  # fmt: skip
        with TestClient(app) as client:
            tag = client.get(f"/jobs/{job}/live").headers["ETag"]
            unchanged = {"If-None-Match": tag}
            # Twice: as the process is, then with the start-up heap frozen (gc.freeze(), as
            # a long-running server can do once it has started): a page that builds 2,400
            # rows triggers full collections, and each one walks every object the process
            # holds (the app, SQLAlchemy, pydantic): that, not the page, is most of its CPU.
            for frozen in (False, True):
                if frozen:
                    gc.collect()
                    gc.freeze()
                print(f"\n{'heap frozen (gc.freeze)' if frozen else 'as is'};"
                      f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
                print(f"{'page':52} {'median':>9} {'best':>9} {'CPU':>9} {'goal':>7} {'HTML':>9}")
                for label, path, goal in cases:
                    headers, status = (unchanged, 304) if "unchanged" in label else (None, 200)
                    median, best, cpu, size = timed(client, path, headers, status)
                    verdict = "ok" if median <= goal else ("ok (CPU)" if cpu <= goal else "OVER")
                    print(f"{label:52} {median:6.0f} ms {best:6.0f} ms {cpu:6.0f} ms {goal:4d} ms"
                          f" {size / 1024:6.0f} KiB  {verdict}")  # fmt: skip
            gc.unfreeze()
        engine.dispose()


if __name__ == "__main__":
    main()
