"""``python -m orchestrator`` is the ``anefarm`` command (used for child processes)."""

from orchestrator.cli import main

main()
