"""PostgreSQL as deploy/postgresql sets it up: SCRAM passwords required (no trust), and
the URL's ``sslmode`` honoured, on a cluster that wants SCRAM passwords (``scram_postgres``
in conftest: the session one trusts every local connection)."""

from __future__ import annotations

import pytest

from orchestrator.store.migrate import current_revision, head_revision, upgrade
from tests.cli.conftest import anefarm, assert_one_line_error


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
