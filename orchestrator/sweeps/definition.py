"""A sweep definition: the YAML file a team writes, validated by one pydantic model.

Every problem is one line naming its key path (``models.1.path: no file matches
'models/*.mlpackage' (relative to /srv/sweeps)``); nothing is stored unless the whole
file is valid. A model is a **series by name**: ``name`` (default: the file name without
its extension) is what history follows across retrained files with new sha256s.

Paths and globs are relative to the YAML file's folder (or absolute). They are resolved
when the sweep is added (an empty glob is an error then) and again each night (a file
gone by then is a "missing" record, not an error: see ``orchestrator.sweeps.nights``).
"""

from __future__ import annotations

import glob
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.errors import AnefarmError, UsageError, shown_url
from orchestrator.protocol import ComputeUnits
from orchestrator.settings import MAX_REPEATS

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MODEL_SUFFIXES = (".mlpackage", ".mlmodel")


class ModelEntry(BaseModel):
    """One ``models:`` item: a path or glob, and the series name for a single file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(default=None, pattern=NAME)


class WebhookEntry(BaseModel):
    """One ``notify:`` item: a webhook told of each alert summary after a night's analysis
    (orchestrator/alerts/notify.py). ``format: json`` posts the summary as JSON; ``slack``
    posts a Slack-compatible ``{"text": …}`` body (also read by Mattermost, Teams' and
    Discord's Slack-compatible endpoints)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str = Field(pattern=r"^https?://[^\s/]+", max_length=2048)
    format: Literal["json", "slack"] = "json"
    # Which summaries to send: every kind by default; e.g. [regression, failure].
    kinds: list[str] | None = Field(default=None, max_length=10)


def shown(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as it may be printed or served: a webhook URL carries its
    secret in the path (Slack's /services/T…/B…/token), so only its first segment shows."""
    hooks = definition.get("notify") or []
    masked = [{**hook, "webhook": shown_url(str(hook.get("webhook", "")))} for hook in hooks]
    return {**definition, "notify": masked} if hooks else dict(definition)


class SweepDefinition(BaseModel):
    """The validated YAML (stored as JSON in ``sweeps.definition``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    schedule: str = Field(min_length=1, max_length=128)
    timezone: str = "UTC"
    models: list[ModelEntry] = Field(min_length=1, max_length=10_000)
    devices: str = Field(min_length=1, max_length=512)
    compute_units: list[ComputeUnits] = Field(
        default_factory=lambda: list(ComputeUnits), min_length=1, max_length=4
    )
    iterations: int = Field(default=50, ge=1, le=10_000)
    warmup: int = Field(default=5, ge=0, le=1_000)
    timeout_s: float = Field(default=600.0, gt=0, le=86_400, allow_inf_nan=False)
    bisect: Literal["auto", "always", "never"] = "auto"
    # Runs of each series a night (on distinct devices of the class where the farm has
    # several): one run a night cannot tell a 10 % step from run-to-run noise (docs/
    # regressions.md). Absent: the farm's default (``ANEFARM_SWEEP_REPEATS``). Device time
    # grows by this factor.
    repeats: int | None = None
    # Webhooks told after each night's analysis, one message per alert summary (issue 18).
    notify: list[WebhookEntry] = Field(default_factory=list, max_length=20)
    # The regression checks' settings for this sweep (orchestrator.regress.RegressSettings:
    # threshold, k, window, …; read by orchestrator.alerts.analysis); absent: the defaults.
    regress: dict[str, Any] | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        text = " ".join(value.split())
        if len(text.split()) != 5 or not croniter.is_valid(text):
            raise ValueError(f"not a 5-field cron expression: {value!r} (e.g. '0 2 * * *')")
        return text

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("devices")
    @classmethod
    def _selector(cls, value: str) -> str:
        from orchestrator import catalog
        from orchestrator.selection import LIVE

        if value.strip().lower() == LIVE:
            return value.strip()
        try:
            catalog.select_terms(value)
        except AnefarmError as error:
            raise ValueError(error.one_line()) from None
        return value.strip()

    @field_validator("regress")
    @classmethod
    def _regress(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        from orchestrator.regress.settings import RegressSettings

        try:
            RegressSettings.model_validate(value)
        except ValidationError as error:
            raise ValueError("; ".join(problems(error))) from None
        return value

    @field_validator("repeats", mode="before")
    @classmethod
    def _repeats(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"runs per night must be a whole number, got {value!r} (e.g. 3)")
        if not 1 <= value <= MAX_REPEATS:
            raise ValueError(
                f"runs per night must be 1–{MAX_REPEATS}, got {value} (e.g. 3; each run is "
                "one more runner launch per series)"
            )
        return value

    @field_validator("compute_units")
    @classmethod
    def _unique_units(cls, value: list[ComputeUnits]) -> list[ComputeUnits]:
        if len(set(value)) != len(value):
            raise ValueError("a compute-units setting appears twice")
        return value

    def runs_per_night(self, default: int) -> int:
        """Runs of each series tonight: this sweep's ``repeats``, else the farm's default."""
        return self.repeats if self.repeats is not None else default

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def night_of(self, scheduled_for: datetime) -> Any:
        """The logical date of a night: ``scheduled_for`` in the sweep's timezone."""
        return scheduled_for.astimezone(self.zone).date()


# Loading ---------------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key missing"
    return re.sub(r"^Value error, ", "", msg)


def problems(error: ValidationError) -> list[str]:
    """One line per problem: ``key.path: what is wrong``."""
    return [f"{_where(e['loc'])}: {_message(dict(e))}" for e in error.errors()]


class InvalidSweep(UsageError):
    """A sweep file that does not validate: ``lines`` has one problem per line."""

    def __init__(self, source: str, lines: list[str]) -> None:
        self.lines = lines
        super().__init__(
            f"{source}: " + "; ".join(lines) if len(lines) == 1 else
            f"{source}: {len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines),
            hint=None,
        )  # fmt: skip

    def one_line(self) -> str:
        return self.message


def parse(data: Any, *, source: str = "sweep") -> SweepDefinition:
    if not isinstance(data, dict):
        raise InvalidSweep(source, ["(file): expected a mapping of keys (name, schedule, …)"])
    try:
        return SweepDefinition.model_validate(data)
    except ValidationError as error:
        raise InvalidSweep(source, problems(error)) from None


def load_file(path: Path) -> SweepDefinition:
    """Read and validate a YAML file, and check its model globs match something now."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"no sweep file {path}", hint="check the path; docs/sweeps.md shows a sweep file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InvalidSweep(str(path), [f"{where}: not YAML: {problem}"]) from None
    definition = parse(data, source=str(path))
    resolved = resolve_models(definition, path.resolve().parent)
    lines = [f"models.{m.entry}.path: {m.reason}" for m in resolved if isinstance(m, Missing)]
    lines += duplicate_series(resolved)
    if lines:
        raise InvalidSweep(str(path), lines)
    return definition


# Models: globs → series ------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A model file of tonight: its series name and path."""

    entry: int  # index in ``models``
    series: str
    path: Path


@dataclass(frozen=True)
class Missing:
    """A ``models`` entry that matched no file: its series (the name, or the pattern's
    stem when it has no name) and why."""

    entry: int
    series: str
    pattern: str
    reason: str


def series_name(path: Path) -> str:
    name = path.name
    for suffix in MODEL_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def resolve_models(definition: SweepDefinition, base: Path | None) -> list[Found | Missing]:
    """Each entry's files now, sorted by name; an entry matching nothing is Missing."""
    out: list[Found | Missing] = []
    for index, entry in enumerate(definition.models):
        pattern = Path(entry.path).expanduser()
        if not pattern.is_absolute():
            pattern = (base or Path.cwd()) / pattern
        text = str(pattern)
        if glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text))
            matches = [p for p in matches if p.name.endswith(MODEL_SUFFIXES)] or matches
        else:
            matches = [pattern] if pattern.exists() else []
        if not matches:
            series = entry.name or series_name(Path(entry.path))
            what = "no file matches" if glob.has_magic(text) else "no such file"
            out.append(Missing(index, series, text, f"{what} {entry.path!r} ({text})"))
            continue
        if entry.name and len(matches) > 1:
            out.append(
                Missing(index, entry.name, text,
                        f"name {entry.name!r} given for a glob matching {len(matches)} files")
            )  # fmt: skip
            continue
        out += [Found(index, entry.name or series_name(p), p) for p in matches]
    return out


def duplicate_series(resolved: list[Found | Missing]) -> list[str]:
    seen: dict[str, int] = {}
    lines = []
    for item in resolved:
        if not isinstance(item, Found):
            continue
        if item.series in seen:
            lines.append(
                f"models.{item.entry}: series {item.series!r} already comes from"
                f" models.{seen[item.series]} (give one of them a name:)"
            )
        else:
            seen[item.series] = item.entry
    return lines
