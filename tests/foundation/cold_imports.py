"""What a fresh interpreter has imported after ``anefarm --help``: the CLI keeps heavy
dependencies (coremltools ~2.5 s, Celery, SQLAlchemy) out of commands that do not use
them, and tests in several areas check it."""

from __future__ import annotations

import json
import subprocess
import sys


def after_help(*then: str) -> tuple[set[str], str]:
    """The modules loaded by ``anefarm --help`` and then the statements ``then``, in a new
    interpreter, with what the help printed."""
    code = "\n".join([
        "import json, sys",
        "from orchestrator.cli import main",
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        *then,
        "print(json.dumps(sorted(sys.modules)))",
    ])  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *printed, modules = out.stdout.strip().splitlines()
    return set(json.loads(modules)), "\n".join(printed)
