"""``python -m orchestrator`` is the ``anefarm`` command (used for child processes)."""

import gc

from orchestrator.cli import main

try:
    main()
finally:
    # The interpreter's exit would run a full garbage collection over every object the
    # command imported (celery, sqlalchemy, pydantic: ~140,000): a quarter of a short
    # command's CPU time, and seconds of a coordinator's or agent's stop on a loaded host.
    # Frozen objects are left to the exit as they are (atexit handlers still run).
    gc.freeze()
