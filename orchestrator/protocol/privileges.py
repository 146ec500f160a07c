"""Running as root: said once per process tree, in anefarm's words, instead of Celery's.

Celery's worker start (``celery.platforms.check_privileges``) warns with a seven-line
``SecurityWarning`` in every worker process run as root: the coordinator, and each device
worker of an agent — four times for ``anefarm coordinator`` and a three-device agent,
and more with ``anefarm profile``. Its real danger, a root worker that unpickles messages,
cannot happen here: the app accepts JSON only (``transport.create_app``), and Celery
itself refuses to start a root worker that accepts pickle, which stays so. What is left is
advice worth one line: code that reads untrusted models (coremltools, the runner app's
files) is better not run as root. So the first process of a tree that starts a worker
(the CLI's profile, an agent's supervisor, a coordinator) says it and marks the
environment its children inherit; Celery's message is filtered by its exact text, and
every other warning (Celery's "gid not found" one included) is shown as before.
"""

from __future__ import annotations

import os
import sys
import warnings

WARNED_ENV = "ANEFARM_ROOT_WARNED"  # inherited: a child of a warned tree stays quiet
ROOT_LINE = (
    "anefarm: warning: running as root: the coordinator's and device workers' Celery workers"
    " have superuser privileges (messages are JSON only, never pickle); hint: run anefarm as"
    " an ordinary user"
)


def warn_if_root() -> None:
    """Say once per process tree that workers run as root; silence Celery's own warning."""
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings(
        "ignore", message="You're running the worker with superuser privileges",
        category=SecurityWarning,
    )  # fmt: skip
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or os.environ.get(WARNED_ENV):
        return
    os.environ[WARNED_ENV] = "1"
    sys.stderr.write(ROOT_LINE + "\n")
    sys.stderr.flush()
