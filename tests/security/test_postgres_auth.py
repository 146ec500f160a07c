"""PostgreSQL as deploy/postgresql sets it up: SCRAM passwords required (no trust), and
the URL's ``sslmode`` honoured. Its own throwaway cluster (the session one trusts every
local connection), run as the ``postgres`` user as tests/services/databases.py does."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.store.migrate import current_revision, head_revision, upgrade
from tests.cli.conftest import anefarm, assert_one_line_error
from tests.services.common import free_port, missing_service, provides
from tests.services.databases import _pg_bin


@pytest.fixture(scope="module")
@provides("postgres")
def scram_postgres() -> Iterator[tuple[int, str]]:
    """(port, password of role ``anefarm``) of a cluster that wants SCRAM passwords."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        missing_service("PostgreSQL binaries not found (apt-get install postgresql)")
    as_root = os.getuid() == 0
    run_as: dict[str, Any] = (
        {"user": "postgres", "group": "postgres", "extra_groups": []} if as_root else {}
    )
    password = "pg-" + secrets.token_urlsafe(18)
    base = Path(tempfile.mkdtemp(prefix="anefarm-pg-scram-"))
    sock = base / "sock"
    sock.mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        user = pwd.getpwnam("postgres")
        for path in (base, sock, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    pwfile.chmod(0o600)
    subprocess.run(
        [initdb, "-D", str(base / "data"), "-U", "anefarm", "--pwfile", str(pwfile),
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-sync"],
        check=True, capture_output=True, **run_as,
    )  # fmt: skip
    pwfile.unlink()
    port = free_port()
    proc = subprocess.Popen(
        [postgres, "-D", str(base / "data"), "-p", str(port), "-k", str(sock),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "ssl=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as,
    )  # fmt: skip
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=port, user="anefarm", password=password,
                            dbname="postgres").close()  # fmt: skip
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("PostgreSQL with SCRAM did not start")
            time.sleep(0.1)
    yield port, password
    proc.send_signal(2)
    proc.wait(timeout=30)
    shutil.rmtree(base, ignore_errors=True)


def _url(port: int, password: str | None, query: str = "") -> str:
    auth = "anefarm" if password is None else f"anefarm:{password}"
    return f"postgresql+psycopg://{auth}@127.0.0.1:{port}/postgres{query}"


def test_the_right_password_migrates_and_reads(scram_postgres):
    port, password = scram_postgres
    url = _url(port, password, "?sslmode=disable")
    upgrade(url)
    assert current_revision(url) == head_revision()


@pytest.mark.parametrize("given", [None, "wrong"], ids=["no-password", "wrong-password"])
def test_no_or_a_wrong_password_is_one_line_and_masked(tmp_path, scram_postgres, given):
    port, password = scram_postgres
    wrong = None if given is None else f"wrong-{password}"
    out = anefarm("db", "current", home=tmp_path / "home", ANEFARM_DATABASE_URL=_url(port, wrong))
    line = assert_one_line_error(out, "127.0.0.1", "ANEFARM_DATABASE_URL", secret=password)
    assert "password" in line.lower()
    if wrong is not None:
        assert wrong not in out.stdout + out.stderr


def test_sslmode_require_is_honoured(tmp_path, scram_postgres):
    """The server has TLS off: sslmode=require must refuse to talk in clear text rather
    than quietly fall back (libpq's default, prefer, would)."""
    port, password = scram_postgres
    out = anefarm("db", "current", home=tmp_path / "home",
                  ANEFARM_DATABASE_URL=_url(port, password, "?sslmode=require"))  # fmt: skip
    assert_one_line_error(out, "SSL", secret=password)
    plain = anefarm("db", "current", home=tmp_path / "home",
                    ANEFARM_DATABASE_URL=_url(port, password, "?sslmode=prefer"))  # fmt: skip
    assert plain.returncode == 0, plain.stderr
