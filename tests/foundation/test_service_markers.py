"""Service markers come from the fixtures a test uses (tests/services/common.py), so
``-m "not postgres"`` and friends select exactly the tests that need the service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = ["tests/cli/test_jobs.py", "tests/cli/test_edge_errors.py",
         "tests/pipeline/test_many_machines.py", "tests/pipeline/test_failures.py"]  # fmt: skip
# One collection in a child (this session's own collection is already done): each test's
# service markers as JSON on the last line.
COLLECT = """
import json, sys, pytest
found = {}
class Report:
    def pytest_collection_finish(self, session):
        for item in session.items:
            found[item.nodeid] = sorted({m.name for m in item.iter_markers()}
                                        & {"redis", "postgres", "celery"})
code = pytest.main(["-p", "no:cacheprovider", "--collect-only", "-q", *sys.argv[1:]],
                   plugins=[Report()])
print(json.dumps(found))
sys.exit(code)
"""


def markers() -> dict[str, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", COLLECT, *FILES],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return {k: set(v) for k, v in json.loads(out.stdout.splitlines()[-1]).items()}


def test_service_markers_follow_the_fixtures() -> None:
    found = markers()

    def of(fragment: str) -> dict[str, set[str]]:
        matched = {k: v for k, v in found.items() if fragment in k}
        assert matched, fragment
        return matched

    # db_url marks its postgres param (pg_url is looked up at run time), not the sqlite one.
    assert all(m == {"postgres"} for m in of("test_jobs.py::").values() if "[postgres]" in m)
    assert {k for k, m in of("test_jobs.py::").items() if m} == {
        k for k in of("test_jobs.py::") if k.endswith("[postgres]")
    }
    # pg_url → pg_server; redis_url → redis_server; the body's Farm.at by hand.
    assert all(m == {"postgres", "redis", "celery"} for m in of("test_many_machines").values())
    # password_redis (cli/conftest.py), and nothing for the tests that need no service.
    for name, marks in of("test_edge_errors.py::").items():
        uses_it = "redis" in name and "password" in name
        assert marks == ({"redis"} if uses_it else set()), name
    # The farm fixture provides celery, and redis through redis_url.
    for name, marks in of("test_failures.py::").items():
        assert marks == {"redis", "celery"}, name
