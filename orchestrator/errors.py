"""The one error family of anefarm.

Every error says what went wrong and what to do next, carries its data, and knows
whether it is an *infrastructure* failure (retry elsewhere) or a *model* failure
(final, recorded, never retried)::

    AnefarmError
    ├── UsageError            bad arguments, unknown device selector (CLI exit 2 family)
    ├── ConfigError           settings that cannot work
    ├── NotFound              a job, run or device id that this database does not hold
    ├── ModelError            bad, corrupt or unsupported model (final)
    ├── ArtifactError         artifact store: missing, unsafe, too large, hash mismatch
    ├── ProtocolError         a message that does not validate (kept raw for diagnosis)
    ├── StoreError            database problems
    ├── ServiceError          Redis, Celery or PostgreSQL could not be started/reached
    └── DeviceError           infra: retry on another device of the class
        ├── DeviceGone        unplugged, lost, connection dropped
        ├── DeviceNotReady    with the reasons a person can act on
        ├── RunnerCrashed     the runner app died
        └── RunnerTimeout     no result within the time limit

Third-party exceptions are translated where they enter (pymobiledevice3 in the iOS
driver, SQLAlchemy in the store, coremltools in modelkit).

Secrets never reach a terminal or a log line: ``mask`` at the end of this module is the
one place that hides them (dependency-free, so the CLI's error path, the store and the
agents can all use it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit


class AnefarmError(Exception):
    """Root of every anefarm error. ``hint`` says what to do next."""

    kind = "error"
    infra = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint on one line, as the CLI prints it."""
        text = self.message.replace("\n", " ")
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(AnefarmError):
    kind = "usage"


class ConfigError(AnefarmError):
    kind = "config"


class NotFound(AnefarmError):
    """An id that is well formed but unknown here: mistyped, or another database (exit 1,
    not 2: the arguments themselves were fine)."""

    kind = "not_found"


class ModelError(AnefarmError):
    """The model itself is the problem: corrupt, unsupported, fails to compile/load."""

    kind = "model"

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class ArtifactError(AnefarmError):
    """Missing, unsafe, oversize or corrupt artifact. On an agent this is infra: the
    model was fine at submit time, so the download or the store is to blame."""

    kind = "artifact"
    infra = True


class ProtocolError(AnefarmError):
    """A message or result that does not validate against ``orchestrator.protocol``."""

    kind = "protocol"
    infra = True


class StoreError(AnefarmError):
    kind = "store"


class ServiceError(AnefarmError):
    kind = "service"
    infra = True


class DeviceError(AnefarmError):
    """Infrastructure failure on a device: the run is retried on another device."""

    kind = "device"
    infra = True

    def __init__(self, message: str, *, udid: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.udid = udid


class DeviceGone(DeviceError):
    kind = "device_gone"


class DeviceNotReady(DeviceError):
    kind = "not_ready"

    def __init__(
        self,
        message: str,
        *,
        udid: str | None = None,
        reasons: list[str] | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, udid=udid, hint=hint)
        self.reasons = list(reasons or [])


class RunnerCrashed(DeviceError):
    kind = "runner_crash"

    def __init__(
        self,
        message: str,
        *,
        udid: str | None = None,
        diagnostics: list[str] | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, udid=udid, hint=hint)
        self.diagnostics = list(diagnostics or [])


class RunnerTimeout(DeviceError):
    kind = "runner_timeout"


# --- masking secrets ------------------------------------------------------------

# scheme://user:password@ anywhere in a text (user may be empty: redis://:pw@host).
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s@/]+@")
# Settings whose value is, or holds, a secret.
SECRET_SETTINGS = ("ANEFARM_BROKER_URL", "ANEFARM_DATABASE_URL", "ANEFARM_ARTIFACT_TOKEN")
SHORTEST_SECRET = 4  # a shorter one would also mask ordinary words ("p" in "postgresql")


def cause_chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it was raised from: a library may wrap a connection error
    in its own (Celery, kombu) or in a plain RuntimeError. The CLI's edge and the web
    app's error handlers both translate the first link they know."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def mask(text: str, *, urls: bool = True) -> str:
    """``text`` without secrets: URL passwords, and any password or token of the
    environment's settings that a library quoted on its own. ``urls=False`` for text
    we wrote ourselves, whose URLs are examples (``redis://:PASSWORD@host``)."""
    if urls:
        text = mask_url_passwords(text)
    for secret in environment_secrets():
        text = text.replace(secret, "***")
    return text


def environment_secrets() -> list[str]:
    found: set[str] = set()
    for name in SECRET_SETTINGS:
        value = os.environ.get(name, "")
        if name.endswith("_TOKEN"):
            found.add(value)
            continue
        try:
            password = urlsplit(value).password
        except ValueError:
            continue
        if password:
            found |= {password, unquote(password)}
    # Longest first: one secret may contain another.
    return sorted((s for s in found if len(s) >= SHORTEST_SECRET), key=len, reverse=True)


def shown_url(url: str) -> str:
    """A URL that may hold a secret in its path (a Slack or generic webhook) as it may be
    shown: scheme, host, port and the first path segment; the rest (a token) as ``…``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" if segments else ""
    rest = "/…" if len(segments) > 1 or parts.query else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{path}{rest}"
