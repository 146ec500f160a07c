"""Service markers come from the fixtures a test uses (tests/services/common.py), so
``-m "not postgres"`` and friends select exactly the tests that need the service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = ["tests/cli/test_jobs.py", "tests/cli/test_edge_errors.py",
         "tests/pipeline/test_many_machines.py", "tests/pipeline/test_failures.py"]  # fmt: skip


def collected(marks: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", marks, *FILES],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return {line for line in out.stdout.splitlines() if "::" in line}


def test_postgres_is_marked_from_pg_server_and_from_db_url_param() -> None:
    marked = collected("postgres")
    # db_url's postgres param (pg_url is looked up at run time), and pg_url → pg_server.
    jobs = {n for n in marked if n.startswith("tests/cli/test_jobs.py")}
    assert jobs and all(n.endswith("[postgres]") for n in jobs)
    assert any("test_many_machines" in n for n in marked)
    assert not any("[sqlite]" in n or "test_edge_errors" in n for n in marked)


def test_redis_and_celery_are_marked_from_the_fixtures() -> None:
    marked = collected("redis or celery")
    edge = {n for n in marked if "test_edge_errors" in n}
    assert edge and all("password" in n for n in edge)  # password_redis
    failures = {n for n in marked if "test_failures" in n}
    assert failures  # the farm fixture: celery, and redis through redis_url
    assert collected("celery and redis") >= failures
    assert not any("test_jobs" in n for n in marked)
