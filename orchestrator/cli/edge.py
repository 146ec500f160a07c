"""The CLI's last line of defence: any exception that reaches ``main()`` becomes one
:class:`AnefarmError` — what failed, where (URLs with their password masked), and the
setting or command that fixes it — so a person never reads a traceback
(``ANEFARM_DEBUG=1`` shows it as well).

Most errors are translated where they enter (the store, modelkit, the iOS driver); this
module catches what commands do not: a broker that is down or refuses the password, a
database that cannot be reached or has no tables, a directory that cannot be written.
Heavy libraries are imported only when an error of theirs is being translated, so
``anefarm --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import AnefarmError, ConfigError, ServiceError, cause_chain, mask

DEBUG_ENV = "ANEFARM_DEBUG"
BROKER_URL_HINT = "use redis://[:password@]host:port/db or rediss://… (TLS)"
BUG_HINT = f"this is a bug in anefarm: rerun with {DEBUG_ENV}=1 for the traceback and report it"
# Messages that mean "Redis wants a (different) password", across Redis 6/7 and redis-py.
_AUTH_WORDS = ("NOAUTH", "WRONGPASS", "invalid username-password", "Authentication required",
               "HELLO must be called", "invalid password")  # fmt: skip


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def translate(error: BaseException) -> AnefarmError:
    """The AnefarmError a person should see for ``error`` (itself if it is one already)."""
    for link in cause_chain(error):
        translated = _known(link)
        if translated is not None:
            return translated
    return AnefarmError(f"unexpected {type(error).__name__}: {_first_line(error)}", hint=BUG_HINT)


def _known(error: BaseException) -> AnefarmError | None:
    if isinstance(error, AnefarmError):
        return error
    module = type(error).__module__.split(".")[0]
    if module in {"pydantic", "pydantic_core"}:
        return _settings_error(error)
    if module in {"redis", "kombu", "celery", "amqp"}:
        return _broker_error(error)
    if module in {"sqlalchemy", "psycopg", "sqlite3"}:
        return _database_error(error)
    if isinstance(error, OSError):
        return _os_error(error)
    if isinstance(error, ValueError) and _raised_in(error, ("redis", "kombu")):
        return _broker_url_error(error)
    return None


def _raised_in(error: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether ``error`` was raised in (or below, e.g. urllib) a frame of ``packages``:
    redis-py and kombu raise a plain ValueError for a URL they cannot parse (a port that
    is no number, a scheme that is not Redis), which is the setting's fault, not ours."""
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in packages:
            return True
        tb = tb.tb_next
    return False


def _broker_url_error(error: BaseException) -> AnefarmError:
    url = _broker_url()
    shown = f" {mask(url)!r}" if url else ""
    return ConfigError(
        f"ANEFARM_BROKER_URL{shown} is not a Redis URL: {_first_line(error)}",
        hint=BROKER_URL_HINT,
    )


def _broker_error(error: BaseException) -> AnefarmError | None:
    import redis.exceptions as redis_errors
    from kombu.exceptions import OperationalError as KombuOperationalError

    text = _first_line(error)
    url = _broker_url()
    where = f"the broker {mask(url)}" if url else "the embedded Redis"
    if isinstance(error, redis_errors.AuthenticationError) or (
        isinstance(error, redis_errors.ResponseError | KombuOperationalError)
        and any(word in text for word in _AUTH_WORDS)
    ):
        if url and _has_password(url):
            return ServiceError(
                f"{where} refused the password: {text}",
                hint="put the right password in ANEFARM_BROKER_URL: redis://:PASSWORD@host:port/db",
            )
        return ServiceError(
            f"{where} wants a password",
            hint="put it in ANEFARM_BROKER_URL: redis://:PASSWORD@host:port/db",
        )
    unreachable = (redis_errors.ConnectionError, redis_errors.TimeoutError, KombuOperationalError)
    if isinstance(error, unreachable):
        return ServiceError(
            f"cannot reach {where}: {text}",
            hint="start redis-server there or fix ANEFARM_BROKER_URL;"
            " `anefarm profile` runs a whole farm on this machine without one",
        )
    return None  # not a connection problem: keep looking down the chain


def _database_error(error: BaseException) -> AnefarmError | None:
    from sqlalchemy import exc

    from orchestrator.store.engine import database_error

    # What the database said, not SQLAlchemy refusing a statement (that is a bug).
    said = (exc.DBAPIError, exc.NoSuchTableError, exc.DisconnectionError, exc.TimeoutError)
    if type(error).__module__.startswith("sqlalchemy") and not isinstance(error, said):
        return None
    return database_error(error, _database_url())


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _broker_url() -> str | None:
    try:
        from orchestrator.settings import load_settings

        return load_settings().broker_url
    except Exception:  # noqa: BLE001 - settings that do not load: fall back to the raw value
        return os.environ.get("ANEFARM_BROKER_URL") or None


def _database_url() -> str:
    try:
        from orchestrator.settings import load_settings

        return load_settings().resolved_database_url
    except Exception:  # noqa: BLE001 - as above
        return os.environ.get("ANEFARM_DATABASE_URL", "the database")


def _settings_error(error: BaseException) -> AnefarmError | None:
    problems: list[dict[str, Any]] = list(getattr(error, "errors", list)())
    if not problems:
        return None
    first = problems[0]
    name = "ANEFARM_" + str(first.get("loc", ("?",))[0]).upper()
    value = os.environ.get(name)
    shown = f"{name}={mask(value)!r}" if value is not None else name
    return ConfigError(
        f"invalid setting {shown}: {first.get('msg', 'invalid')}",
        hint=f"fix or unset {name}; README.md lists the settings",
    )


def _os_error(error: OSError) -> AnefarmError:
    path = error.filename
    reason = error.strerror or _first_line(error)
    if path is None:
        if isinstance(error, ConnectionError | TimeoutError):
            return ServiceError(
                f"connection failed: {reason}", hint="check the host and port in your settings"
            )
        return AnefarmError(f"system error: {reason}", hint=BUG_HINT)
    if isinstance(error, PermissionError):
        hint = "choose a place you can write to or fix its permissions; ANEFARM_HOME moves anefarm's own files"
    elif isinstance(error, NotADirectoryError | FileExistsError):
        hint = "a file stands where a directory should be: choose another path"
    elif isinstance(error, FileNotFoundError):
        hint = "check the path; its parent directory must exist"
    else:
        hint = "check the path, free space and permissions; ANEFARM_HOME moves anefarm's own files"
    return ConfigError(f"{reason}: {path}", hint=hint)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return mask(text.splitlines()[0]) if text else type(error).__name__


def print_traceback(error: BaseException) -> None:
    """The full traceback on stderr (only with ANEFARM_DEBUG=1)."""
    import traceback

    traceback.print_exception(error, file=sys.stderr)


def check_broker(url: str) -> None:
    """One PING: a command about to start child processes fails before them, once (and
    a broker off loopback without a password is refused before it is tried)."""
    from orchestrator.protocol import livestate
    from orchestrator.settings import require_broker_auth

    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):  # before the password: it is not Redis at all
        raise ConfigError(
            f"ANEFARM_BROKER_URL {mask(url)!r} is not a Redis URL (scheme {scheme or '(none)'!r})",
            hint=BROKER_URL_HINT,
        )
    require_broker_auth(url)  # off loopback without a password: refused, not tried
    client = livestate.connect(url)
    try:
        client.ping()
    finally:
        client.close()
