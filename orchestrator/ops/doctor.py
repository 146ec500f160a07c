"""``anefarm doctor``: what is wrong with this deployment, one finding per line.

Each check looks at one thing a platform team gets wrong when a farm leaves one machine
(docs/deploy.md): a broker off loopback without a password or without TLS, a database
that cannot be reached, has no tables or lags this release's migrations, a PostgreSQL off
loopback without a password or TLS, agents whose clocks disagree with the coordinator's,
too little disk for the artifact store. A finding is ``fix`` (the farm is unsafe or will
not work: exit 1), ``warn`` (works, but read this) or ``ok``.

Nothing here prints a secret: every message goes through ``errors.mask``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import AnefarmError, mask
from orchestrator.settings import Settings, broker_auth_problem, is_loopback_host

# Beyond this, timestamps from agents (run start/end, last seen) disagree with the
# coordinator's enough to mislead a person reading a report; NTP keeps hosts within ms.
MAX_CLOCK_SKEW_S = 5.0
# The artifact store must hold at least one model of the largest size allowed; below a
# few of them a busy day fills the disk.
DISK_MODELS_WARN = 5
BROKER_TIMEOUT_S = 3.0
# Results waiting in Redis: a handful is a burst; hundreds mean nobody ingests them.
RESULTS_BACKLOG_WARN = 100
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
UNCHECKED_WITHOUT_BROKER = (
    "its persistence, the results backlog, quarantined devices, agents' heartbeats and clocks"
)


class Level(StrEnum):
    FIX = "fix"
    WARN = "warn"
    OK = "ok"


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str
    hint: str | None = None

    def line(self) -> str:
        text = f"{self.level.value:<4} {self.check}: {mask(self.message)}"
        return f"{text} ({mask(self.hint, urls=False)})" if self.hint else text

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["message"] = mask(self.message)
        body["hint"] = mask(self.hint, urls=False) if self.hint else None
        return body


def diagnose(settings: Settings, *, now: Callable[[], float] = time.time) -> list[Finding]:
    """Every check's findings, in the order a person fixes them: broker, database, agents,
    disk."""
    findings = list(_broker(settings, now))
    findings += _database(settings)
    findings += _artifacts(settings)
    return findings


def must_fix(findings: list[Finding]) -> bool:
    return any(f.level is Level.FIX for f in findings)


def render_json(findings: list[Finding]) -> str:
    return json.dumps({"ok": not must_fix(findings), "findings": [f.to_json() for f in findings]})


# The broker -----------------------------------------------------------------------------
def _broker(settings: Settings, now: Callable[[], float]) -> Iterator[Finding]:
    url = settings.broker_url
    if not url:
        yield Finding("broker", Level.WARN, "no broker configured: only one-machine commands "
                      "(profile, demo) work, with an embedded Redis",
                      "set ANEFARM_BROKER_URL=redis://USER:PASSWORD@host:port/0 for a farm")  # fmt: skip
        return
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing it is the check: redis-py would fail on it later
    except ValueError as error:
        yield Finding("broker-url", Level.FIX, f"ANEFARM_BROKER_URL {url} is not a Redis URL: "
                      f"{error}", "use redis://[:password@]host:port/db or rediss://… (TLS)")  # fmt: skip
        return
    problem = broker_auth_problem(url)
    if problem:
        yield Finding("broker-auth", Level.FIX, problem,
                      "set requirepass or an ACL user on that Redis and put it in "
                      "ANEFARM_BROKER_URL (deploy/redis/users.acl.in)")  # fmt: skip
    else:
        yield Finding("broker-auth", Level.OK, "the broker needs a password or is on loopback")
    if not is_loopback_host(parts.hostname) and parts.scheme != "rediss":
        yield Finding("broker-tls", Level.FIX,
                      f"the broker {url} is off this machine and not TLS: passwords and "
                      "batches cross the network in clear text",
                      "use rediss://…?ssl_cert_reqs=required&ssl_ca_certs=CA.pem and "
                      "Redis's tls-port (docs/deploy.md)")  # fmt: skip
    client = _broker_client(url)
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure to reach it is the finding
        yield Finding("broker-reachable", Level.FIX, *_translated(error, url))
        # Say what could not be looked at, rather than leave those lines out: a person
        # reading only "ok" below would think the agents were checked.
        yield Finding("broker-checks", Level.WARN,
                      f"not checked while the broker cannot be reached: {UNCHECKED_WITHOUT_BROKER}",
                      "run `anefarm doctor` again once it answers")  # fmt: skip
        return
    else:
        yield Finding("broker-reachable", Level.OK, f"the broker {url} answers")
    try:
        yield from _persistence(client)
        yield from _backlog(client)
        yield from _clock_skew(client, settings, now)
    finally:
        client.close()


def _broker_client(url: str) -> Any:
    import redis

    from orchestrator.broker.embedded import client_url

    return redis.Redis.from_url(client_url(url), decode_responses=True,
                                socket_timeout=BROKER_TIMEOUT_S,
                                socket_connect_timeout=BROKER_TIMEOUT_S)  # fmt: skip


def _persistence(client: Any) -> Iterator[Finding]:
    from orchestrator.delivery.inflight import persistence_warning

    warning = persistence_warning(client)
    if warning:
        yield Finding("broker-persistence", Level.WARN, warning, "deploy/redis/anefarm.conf")


def _backlog(client: Any) -> Iterator[Finding]:
    """Results nobody ingests (no coordinator, or one that cannot keep up) and devices the
    coordinator took out of service."""
    from orchestrator.protocol import livestate
    from orchestrator.protocol.transport import RESULTS_QUEUE

    waiting = sum(int(client.llen(name)) for name in client.scan_iter(match=f"{RESULTS_QUEUE}*")
                  if client.type(name) == "list")  # fmt: skip
    if waiting > RESULTS_BACKLOG_WARN:
        yield Finding("results-backlog", Level.WARN,
                      f"{waiting} results wait for ingest: the coordinator is not running "
                      "or not keeping up", "start it (systemctl status anefarm-coordinator); "
                      "/metrics anefarm_ingest_seconds shows how long each takes")  # fmt: skip
    quarantined = livestate.quarantined_udids(client)
    if quarantined:
        yield Finding("quarantine", Level.WARN,
                      f"{len(quarantined)} device(s) quarantined: {', '.join(sorted(quarantined))}",
                      "look at the device, then `anefarm devices release UDID`")  # fmt: skip


def _clock_skew(client: Any, settings: Settings, now: Callable[[], float]) -> Iterator[Finding]:
    """Each agent's clock against this host's, from its heartbeat: the agent writes its
    own time (``last_seen``) with a TTL, so the key's remaining TTL says when, on this
    host's clock, it was written."""
    from orchestrator.protocol.livestate import AGENT_KEY

    ttl_s = settings.heartbeat_ttl_s
    skews: list[tuple[str, float]] = []
    for key in sorted(client.scan_iter(match=AGENT_KEY.format(name="*"), count=500)):
        pipe = client.pipeline()
        pipe.get(key)
        pipe.pttl(key)
        raw, pttl_ms = pipe.execute()
        if not raw or pttl_ms is None or pttl_ms < 0:
            continue
        try:
            beat = json.loads(raw)
            agent_time = float(beat["last_seen"])
        except (ValueError, KeyError, TypeError):
            continue
        written_at = now() - max(0.0, ttl_s - pttl_ms / 1000)
        skews.append((str(beat.get("name", key)), agent_time - written_at))
    if not skews:
        yield Finding("clock-skew", Level.WARN, "no agent heartbeat in Redis: no clock to compare",
                      "start the agents (docs/deploy.md, adding Mac agents)")  # fmt: skip
        return
    for name, skew in skews:
        if abs(skew) > MAX_CLOCK_SKEW_S:
            side = "ahead of" if skew > 0 else "behind"
            yield Finding("clock-skew", Level.FIX,
                          f"agent {name}'s clock is {abs(skew):.0f} s {side} this host's",
                          "run NTP on both (macOS: System Settings → Date & Time → set "
                          "automatically; Linux: systemd-timesyncd or chrony)")  # fmt: skip
    worst = max(abs(skew) for _, skew in skews)
    if worst <= MAX_CLOCK_SKEW_S:
        yield Finding("clock-skew", Level.OK,
                      f"{len(skews)} agent(s) within {worst:.1f} s of this host's clock")  # fmt: skip


# The database ---------------------------------------------------------------------------
def _database(settings: Settings) -> Iterator[Finding]:
    from sqlalchemy.engine import make_url

    from orchestrator.store.engine import normalize_url, safe_url

    url = settings.resolved_database_url
    shown = safe_url(url)
    try:
        parsed = make_url(normalize_url(url))
    except Exception:  # noqa: BLE001 - any unparseable URL is the finding
        yield Finding("database", Level.FIX, f"not a database URL: {mask(url)!r}",
                      "ANEFARM_DATABASE_URL=postgresql+psycopg://USER:PASSWORD@host/db")  # fmt: skip
        return
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if settings.broker_url and not is_loopback_host(urlsplit(settings.broker_url).hostname):
            yield Finding("database", Level.WARN,
                          f"SQLite ({shown}) for a farm with a remote broker: one writer, "
                          "one disk", "PostgreSQL for a farm (docs/deploy.md)")  # fmt: skip
        database = parsed.database
        if database and database != ":memory:" and not Path(database).exists():
            yield Finding("database-migrated", Level.FIX, f"no database at {shown} yet",
                          "run `anefarm db upgrade`")  # fmt: skip
            return
    elif backend == "postgresql":
        yield from _postgres_settings(parsed, shown)
    yield from _migrated(url, shown)


def _postgres_settings(parsed: Any, shown: str) -> Iterator[Finding]:
    host = parsed.host or str(parsed.query.get("host", "") or "")
    local = not host or host.startswith("/") or is_loopback_host(host)
    if not parsed.password and not local:
        yield Finding("database-auth", Level.FIX,
                      f"the database {shown} is off this machine and its URL has no password",
                      "give the anefarm role a password (scram-sha-256 in pg_hba.conf, "
                      "deploy/postgresql/) and put it in ANEFARM_DATABASE_URL")  # fmt: skip
    sslmode = str(parsed.query.get("sslmode", "") or "")
    if not local and sslmode not in TLS_SSLMODES:
        yield Finding("database-tls", Level.FIX,
                      f"the database {shown} is off this machine without sslmode=require "
                      f"(sslmode={sslmode or 'unset: prefer, which falls back to clear text'})",
                      "add ?sslmode=verify-full (or require) to ANEFARM_DATABASE_URL")  # fmt: skip


def _migrated(url: str, shown: str) -> Iterator[Finding]:
    from orchestrator.store.migrate import current_revision, head_revision

    try:
        current = current_revision(url)
    except Exception as error:  # noqa: BLE001 - unreachable, refused, …: the finding
        yield Finding("database-reachable", Level.FIX, *_translated(error))
        return
    yield Finding("database-reachable", Level.OK, f"the database {shown} answers")
    head = head_revision()
    if current == head:
        yield Finding("database-migrated", Level.OK, f"schema at {head}, this release's")
    elif current is None:
        yield Finding("database-migrated", Level.FIX, f"the database {shown} has no anefarm "
                      "tables", "run `anefarm db upgrade` before starting the coordinator")  # fmt: skip
    else:
        yield Finding("database-migrated", Level.FIX,
                      f"the database {shown} is at revision {current}, this release needs {head}",
                      "run `anefarm db upgrade` (a newer revision means a newer anefarm "
                      "wrote it: upgrade this host)")  # fmt: skip


# The artifact store -----------------------------------------------------------------------
def _artifacts(settings: Settings) -> Iterator[Finding]:
    directory = settings.resolved_artifact_dir
    existing = next((p for p in (directory, *directory.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    needed = settings.max_model_bytes
    gib = 1024**3
    if free < needed:
        yield Finding("disk", Level.FIX,
                      f"{free / gib:.1f} GiB free for the artifact store {directory}: "
                      f"less than one model of the largest allowed size ({needed / gib:.1f} GiB)",
                      "free space, move ANEFARM_ARTIFACT_DIR, or lower ANEFARM_MAX_MODEL_BYTES")  # fmt: skip
    elif free < needed * DISK_MODELS_WARN:
        yield Finding("disk", Level.WARN,
                      f"{free / gib:.1f} GiB free for the artifact store {directory}: "
                      f"fewer than {DISK_MODELS_WARN} models of the largest allowed size",
                      "free space or move ANEFARM_ARTIFACT_DIR")  # fmt: skip
    else:
        yield Finding("disk", Level.OK, f"{free / gib:.1f} GiB free for the artifact store")
    url = settings.artifact_url or ""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        if not settings.artifact_token:
            yield Finding("artifact-token", Level.FIX,
                          f"agents fetch models from {url} without a token",
                          "set ANEFARM_ARTIFACT_TOKEN on the coordinator and the agents")  # fmt: skip
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            yield Finding("artifact-tls", Level.WARN,
                          f"models and the artifact token cross the network in clear text ({url})",
                          "put the coordinator's :8480 behind TLS (docs/deploy.md)")  # fmt: skip


def _translated(error: BaseException, url: str | None = None) -> tuple[str, str | None]:
    """What a failed check says: anefarm's own errors as they are (the store translates
    the database's), Redis's in the CLI's words."""
    if isinstance(error, AnefarmError):
        return error.message, error.hint
    import redis

    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, redis.exceptions.AuthenticationError) or any(
        word in text for word in AUTH_WORDS
    ):
        if url is not None and not _has_password(url):  # nothing was refused: none was sent
            return ("the broker wants a password and ANEFARM_BROKER_URL has none",
                    "put it in ANEFARM_BROKER_URL: redis://:PASSWORD@host:port/db")  # fmt: skip
        return (f"the broker refused the password: {text}",
                "put the right user and password in ANEFARM_BROKER_URL")  # fmt: skip
    where = f"the broker {url}" if url else "the broker"
    return (f"cannot reach {where}: {text}",
            "start Redis there or fix ANEFARM_BROKER_URL (host, port, TLS options)")  # fmt: skip


# Redis's words for "a (different) password is needed", across Redis 6/7 and redis-py.
AUTH_WORDS = ("WRONGPASS", "NOAUTH", "invalid username-password", "HELLO must be called",
              "Authentication required")  # fmt: skip


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False
