"""One settings object for every anefarm process.

Values come from CLI flags, then ``ANEFARM_*`` environment variables, then defaults.
Nothing reads the environment at import time: call :func:`load_settings` once at the
edge (CLI, worker start-up, test fixture) and pass the object down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3  # 2 GiB: Core ML models over ~1 GB are already off the ANE
# Runs of one series a sweep night may make (``repeats:``): each costs a runner launch.
MAX_REPEATS = 20


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("anefarm", appauthor=False))


class Settings(BaseSettings):
    """anefarm configuration (environment prefix ``ANEFARM_``)."""

    model_config = SettingsConfigDict(env_prefix="ANEFARM_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home, description="Data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file anefarm.db in the home"
    )
    broker_url: str | None = Field(
        default=None, description="Redis URL; default: the embedded Redis anefarm starts itself"
    )
    artifact_dir: Path | None = Field(
        default=None, description="Content-addressed model store; default: <home>/artifacts"
    )
    artifact_url: str | None = Field(
        default=None,
        description="Where agents fetch models: file:///dir or http(s)://coordinator:port",
    )
    artifact_token: str | None = Field(
        default=None, description="Bearer token agents send to GET /artifacts/<sha256>"
    )
    # The web app (orchestrator/web): reads without a token, only when it is bound to a
    # loopback address (a laptop's own dashboard); writes always need a token.
    open_reads: bool = Field(
        default=False, description="Web app on loopback: reads need no token (ANEFARM_OPEN_READS=1)"
    )
    agent_cache_dir: Path | None = Field(
        default=None, description="Agent-side model cache; default: <home>/agent-cache"
    )
    max_model_bytes: int = Field(default=DEFAULT_MAX_MODEL_BYTES, gt=0)
    # Longest batch we expect (seconds). The broker's visibility timeout is set above it,
    # otherwise Redis hands a still-running task to a second worker (services.md).
    run_timeout_s: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    # Packed probes (orchestrator/bisect/packing.py): a parent's probe runs share runner
    # launches, filled up to half the batch timeout at a conservative cost per prediction.
    probe_packing: bool = Field(default=True, description="Probes share runner launches")
    probe_pack_max: int = Field(default=32, ge=2, le=64, description="Models per launch")
    probe_prediction_ms: float = Field(
        default=20.0, gt=0, description="Conservative ms per probe prediction (packing)"
    )
    retry_backoff_s: float = Field(default=1.0, ge=0)
    quarantine_after: int = Field(default=3, ge=1, description="Infra failures in a row")
    # The agent restarts a device after this many device-side infra failures in a row
    # (runner crash or hang, malformed result); 0 never. Below quarantine_after, so a
    # device gets one reboot before the coordinator quarantines it.
    reboot_after: int = Field(default=2, ge=0, description="Infra failures in a row → reboot")
    heartbeat_ttl_s: int = Field(default=30, ge=2)
    # The coordinator's ingest waits out a database outage this long per result (capped
    # below half the broker's visibility timeout), then hands the result back to Redis.
    db_outage_budget_s: float = Field(default=600.0, ge=0)
    # Results waiting on the queue that one ingest transaction takes along with the one it
    # was handed (orchestrator/delivery/drain.py); 0 stores each result on its own.
    ingest_batch: int = Field(default=32, ge=0, le=1000)
    # A run for a device class the farm has no device of waits at most this long (then it
    # fails "no device"), so every run ends even when a phone never comes back.
    device_wait_s: float = Field(default=12 * 3600.0, gt=0)
    # Sweep scheduling in the coordinator (orchestrator/sweeps/scheduler_loop.py): a fire
    # missed while no coordinator ran still starts (once, marked late) within the grace.
    sweep_grace_s: float = Field(default=6 * 3600.0, ge=0, description="Missed-fire grace")
    sweep_tick_s: float = Field(default=10.0, gt=0, description="Scheduler pass interval")
    # Runs of each series a sweep night makes when its file sets no ``repeats:``
    # (docs/sweeps.md, docs/regressions.md: the bench figures behind the default).
    sweep_repeats: int = Field(default=1, ge=1, le=MAX_REPEATS, description="Runs per night")
    # Tests only: from this Unix time on, the scheduler's clock runs sweep_clock_speed
    # times faster (a sweep "every minute for five minutes" in seconds).
    sweep_clock_anchor: float | None = Field(default=None, description="Tests: clock warp start")
    sweep_clock_speed: float = Field(default=1.0, gt=0, description="Tests: clock warp factor")
    redis_persist: bool = Field(default=False, description="Embedded Redis keeps an AOF file")
    # How a device worker starts the pool child that runs batches. None = the platform's
    # default (billiard: spawn on macOS, fork on Linux); tests force each to prove both.
    worker_start_method: Literal["fork", "spawn"] | None = Field(
        default=None, description="Device worker pool start method (fork|spawn)"
    )
    # Real iOS devices (agents/devices/ios): the runner app and the health gates.
    ios_runner_bundle_id: str = Field(default="org.anefarm.runner", min_length=1)
    ios_runner_version: str | None = Field(default=None, description="Expected CFBundleVersion")
    ios_runner_ipa: Path | None = Field(default=None, description="Runner .ipa to install/upgrade")
    ios_min_battery_percent: float = Field(default=20.0, ge=0, le=100)
    ios_max_temperature_c: float = Field(default=40.0, gt=0, le=100)
    # Tests and bring-up only (docs/real-devices.md): "module:factory", factory(udid) returns
    # the DeveloperServices the driver uses instead of pymobiledevice3's; such devices are
    # labelled SIMULATED.
    ios_developer_services: str | None = Field(
        default=None, description="Test/bring-up hook: module:factory of developer services"
    )

    # Sweep alerts' webhooks (orchestrator/alerts/notify.py): attempts per message, the
    # first retry's wait (doubling after), each request's timeout. A webhook that stays
    # down costs a night at most attempts × timeout + the waits, and never fails it.
    notify_attempts: int = Field(default=4, ge=1, le=10)
    notify_backoff_s: float = Field(default=1.0, ge=0, le=60)
    notify_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("home", "artifact_dir", "agent_cache_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    # Resolved values: defaults that depend on ``home``.
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'anefarm.db'}"

    @property
    def resolved_artifact_dir(self) -> Path:
        return self.artifact_dir or self.home / "artifacts"

    @property
    def resolved_agent_cache_dir(self) -> Path:
        return self.agent_cache_dir or self.home / "agent-cache"

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or self.resolved_artifact_dir.resolve().as_uri()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; ``overrides`` (e.g. CLI flags) win when not None."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)


# A broker off this machine carries every batch and result of the farm: without a
# password anyone who reaches its port can read, forge or flush them (issue 20). So the
# coordinator and the agents refuse to start against one; loopback and a unix socket stay
# open for one-machine use (the embedded Redis binds 127.0.0.1 only).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})


def is_loopback_host(host: str | None) -> bool:
    """True for a unix socket (no host), localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return True
    host = host.strip("[]").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def broker_auth_problem(url: str) -> str | None:
    """Why ``url`` must not be used as a farm's broker, or None when it may: a broker
    that is not on loopback needs a password in its URL (``redis://[user]:PASSWORD@…``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, password = parts.hostname, parts.password
    except ValueError:
        return None  # not parseable here: the transport's scheme check reports it
    if is_loopback_host(host) or password:
        return None
    return f"the broker {url} is not on this machine and its URL has no password"


def require_broker_auth(url: str) -> None:
    """ConfigError unless ``url`` may be used as the farm's broker (see above)."""
    from orchestrator.errors import ConfigError

    problem = broker_auth_problem(url)
    if problem is not None:
        raise ConfigError(
            problem,
            hint="set requirepass or an ACL user on that Redis and put it in "
            "ANEFARM_BROKER_URL: redis://[USER]:PASSWORD@host:port/db (docs/deploy.md)",
        )
