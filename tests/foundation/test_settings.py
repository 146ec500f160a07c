"""One settings object; environment read when asked, not at import."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.settings import load_settings


def test_defaults_derive_from_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ANEFARM_HOME", str(tmp_path))
    s = load_settings()
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'anefarm.db'}"
    assert s.resolved_artifact_dir == tmp_path / "artifacts"
    assert s.resolved_artifact_url.startswith("file://")
    assert s.broker_url is None


def test_environment_is_read_at_load_time_not_import(monkeypatch, tmp_path):
    monkeypatch.setenv("ANEFARM_BROKER_URL", "redis://127.0.0.1:1/0")
    assert load_settings().broker_url == "redis://127.0.0.1:1/0"
    monkeypatch.setenv("ANEFARM_BROKER_URL", "redis://127.0.0.1:2/0")
    assert load_settings().broker_url == "redis://127.0.0.1:2/0"


def test_overrides_win_and_none_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("ANEFARM_MAX_ATTEMPTS", "5")
    assert load_settings(max_attempts=None).max_attempts == 5
    assert load_settings(max_attempts=2).max_attempts == 2
    assert load_settings(home=Path("~/x")).home == Path.home() / "x"


def test_nonsense_is_refused(monkeypatch):
    monkeypatch.setenv("ANEFARM_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError):
        load_settings()
