"""`-h` is `--help` for anefarm and every command, `--version` says the installed version,
and help lists flags without a `<bool>` beside them."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from tests.cli.conftest import anefarm


def test_version_is_the_installed_one(tmp_path: Path) -> None:
    for flag in ("--version", "-V"):
        out = anefarm(flag, home=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"anefarm {version('anefarm')}"


def test_h_is_help_for_the_app_and_its_commands(tmp_path: Path) -> None:
    for args in (["-h"], ["report", "-h"], ["db", "-h"]):
        out = anefarm(*args, home=tmp_path, COLUMNS="100")
        assert out.returncode == 0, (args, out.stderr)
        assert "Usage: anefarm" in out.stdout and "-h" in out.stdout, args
    report_help = anefarm("report", "--help", home=tmp_path, COLUMNS="100").stdout
    assert "<bool>" not in report_help and "<str>" not in report_help
    assert "--json" in report_help and "--fail-on" in report_help
