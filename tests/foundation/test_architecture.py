"""Architecture contracts run as part of the suite: agents never import the database
layer, ingest or the API (an agent holds no database credentials)."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.foundation.cold_imports import after_help

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency"
    out = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KEPT" in out.stdout


def test_help_does_not_import_heavy_dependencies():
    loaded, _ = after_help()
    assert loaded.isdisjoint({"coremltools", "celery", "sqlalchemy", "torch"})


# What agents may import (issue 16): everything else of the coordinator is forbidden.
AGENTS_MAY_IMPORT = {"protocol", "catalog", "settings", "errors", "stats", "modelkit"}


def test_agents_allow_list_names_every_other_coordinator_module():
    import pkgutil
    import tomllib

    import orchestrator

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["name"].startswith("Agents import only")
    ]
    forbidden = {name.removeprefix("orchestrator.") for name in contract["forbidden_modules"]}
    modules = {m.name for m in pkgutil.iter_modules(orchestrator.__path__)} - {"__main__"}
    # A new module of the coordinator must be added to the contract (or to the allow-list).
    assert forbidden == modules - AGENTS_MAY_IMPORT
