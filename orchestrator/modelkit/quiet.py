"""Keep coremltools' Linux noise ("Failed to load _MLModelProxy …", progress bars) away
from users: those messages say Core ML's runtime is absent, which we know."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "coremltools" in sys.modules:
        yield
        return
    # Its warnings go through logging: lower the level before the import emits them.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        import coremltools  # noqa: F401
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    yield
