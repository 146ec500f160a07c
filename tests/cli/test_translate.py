"""The translation table itself, in-process: which exception becomes which error."""

from __future__ import annotations

import errno
import sqlite3

import pytest
import redis
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import text
from sqlalchemy.exc import InvalidRequestError

from orchestrator.cli.edge import BUG_HINT, translate
from orchestrator.errors import AnefarmError, ConfigError, ServiceError, StoreError, mask
from orchestrator.store.engine import make_engine


def test_mask_hides_url_passwords_and_the_settings_secrets(monkeypatch):
    monkeypatch.setenv("ANEFARM_BROKER_URL", "redis://:s3cr%40t-long@h:6379/0")
    monkeypatch.setenv("ANEFARM_ARTIFACT_TOKEN", "tok-0123456789")
    said = "auth s3cr@t-long failed at postgresql://u:p@db/x with tok-0123456789"
    assert mask(said) == "auth *** failed at postgresql://u:***@db/x with ***"
    monkeypatch.setenv("ANEFARM_DATABASE_URL", "postgresql://u:p@db/x")
    assert mask("postgresql is down") == "postgresql is down"  # "p" is too short to scrub


def test_a_wrapped_connection_error_is_found_down_the_chain(monkeypatch):
    monkeypatch.setenv("ANEFARM_BROKER_URL", "redis://:pw-long-enough@127.0.0.1:1/0")
    try:
        try:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1.")
        except redis.ConnectionError as cause:
            raise RuntimeError("worker failed") from cause
    except RuntimeError as error:
        translated = translate(error)
    assert isinstance(translated, ServiceError)
    assert translated.message.startswith("cannot reach the broker redis://:***@127.0.0.1:1/0")


def test_kombu_auth_failure_is_a_password_error(monkeypatch):
    monkeypatch.setenv("ANEFARM_BROKER_URL", "redis://:bad-password@127.0.0.1:1/0")
    translated = translate(KombuOperationalError("WRONGPASS invalid username-password pair"))
    assert isinstance(translated, ServiceError) and "refused the password" in translated.message


def test_database_errors_say_which_database_and_what_fixes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ANEFARM_HOME", str(tmp_path))
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(Exception) as raised, engine.connect() as conn:
        conn.execute(text("SELECT * FROM jobs"))
    engine.dispose()
    translated = translate(raised.value)
    assert isinstance(translated, StoreError)
    assert "has no anefarm tables" in translated.message and str(tmp_path) in translated.message
    assert "`anefarm db upgrade`" in (translated.hint or "")
    locked = translate(sqlite3.OperationalError("database is locked"))
    assert isinstance(locked, StoreError) and "try again" in (locked.hint or "")


def test_file_system_errors_name_the_path():
    denied = translate(PermissionError(errno.EACCES, "Permission denied", "/srv/out"))
    assert isinstance(denied, ConfigError) and denied.message == "Permission denied: /srv/out"
    in_the_way = translate(NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/sub"))
    assert "a file stands where a directory should be" in (in_the_way.hint or "")


def test_anything_else_is_called_a_bug_in_one_line():
    for error in (ValueError("bad\nsecond line"), InvalidRequestError("misuse")):
        translated = translate(error)
        assert type(translated) is AnefarmError and translated.hint == BUG_HINT
        assert "\n" not in translated.one_line()
