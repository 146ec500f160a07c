"""Shared test set-up. Real services come from the plugins in ``tests/services``:
each starts a real process (redis-server, a Celery worker, PostgreSQL) and skips with a
reason when it is missing locally, but fails when ``CI=true``."""

import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.services.common",
    "tests.services.databases",
    "tests.services.redis",
    "tests.services.celery",
    "tests.services.order",
    "tests.pipeline.ingesting",
]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Every sample model (``anefarm samples --small``), file name → path, converted once
    for the whole session: a conversion costs seconds. No test needs the full-size inputs.

    The files are shared: copy a sample before changing it. The session ends with an error
    if a test changed them anyway, since later tests would see the changed copy.
    """
    from orchestrator import modelkit

    out = tmp_path_factory.mktemp("samples")
    written = {p.name: p for p in modelkit.write_samples(out, small=True)}
    before = _tree_digest(out)
    yield written
    if _tree_digest(out) != before:
        pytest.fail(f"a test changed the shared sample models in {out}; copy them first")


# Device workers start their pool child by fork on Linux and by spawn on macOS (issue 14).
# Running every worker-starting test both ways would double the suite, so each test gets
# one of the two, chosen by its name (stable from run to run, half the tests each way);
# the main job and the iOS end-to-end test run under both explicitly. Set
# ANEFARM_TEST_START_METHOD=fork|spawn to run the whole suite one way.


@pytest.fixture(autouse=True)
def worker_start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    from tests.services.common import stable_nodeid  # a plugin: imported once pytest has it

    method = os.environ.get("ANEFARM_TEST_START_METHOD") or (
        "spawn" if zlib.crc32(stable_nodeid(request.node).encode()) % 2 else "fork"
    )
    monkeypatch.setenv("ANEFARM_WORKER_START_METHOD", method)
    print(f"device workers start their pool child by {method}")  # shown when a test fails
    return method
