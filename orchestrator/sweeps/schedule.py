"""When a sweep's night is due: pure functions of a cron, a timezone and a clock.

The scheduler (``orchestrator.sweeps.scheduler_loop``) asks, every tick, for each stored
sweep: which scheduled time is due *now*, if any? The answer is the **latest** cron tick
at or before now, and only that one — a coordinator that was down across three ticks
fires the last of them once (marked late), never the three. A tick is due when

- the sweep is not paused,
- the tick is after the sweep's definition was stored (``since``: a sweep added at 02:10
  does not fire the 02:00 night, and a resumed sweep does not catch up on its pause),
- it is not older than the grace (a night is still worth running 5 h late, not 2 days),
- and it has no night yet (the caller checks; the database's unique key on
  (sweep, scheduled_for) is the last guard when two coordinators race).

Cron is evaluated in the sweep's timezone (``zoneinfo``), and every time leaving this
module is UTC. Daylight saving: a wall time skipped in spring fires once at the end of
the gap (croniter's rule: 02:30 on a spring-forward night fires at 03:00); a wall time
that occurs twice in autumn fires once, at its first occurrence, when the cron names
hours (a nightly "30 2 * * *" is one night, not two). A cron with ``*`` hours ("every 20
minutes") is about elapsed time and keeps its ticks in the repeated hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from orchestrator.errors import UsageError

# A night claimed within this much of its scheduled time is on time, later ones are
# marked late. Above one scheduler tick (10 s by default) plus the time to plan an
# earlier sweep due at the same minute; below any real outage.
ON_TIME_S = 60.0
# Walking back over more ticks than this to count the skipped ones is not worth it (an
# every-minute cron over a 6 h grace is 360).
_MAX_COUNTED = 10_000


@dataclass(frozen=True)
class SweepSchedule:
    """What the scheduler needs of a stored sweep."""

    sweep_id: UUID
    name: str
    cron: str
    timezone: str
    paused: bool
    since: datetime  # when its definition (or pause state) was last stored


@dataclass(frozen=True)
class DueFire:
    """A night to start now: its logical time (UTC) and whether it runs late."""

    sweep_id: UUID
    name: str
    scheduled_for: datetime
    late: bool
    # Earlier ticks within the grace (after any earlier night) that collapse into this one.
    skipped: int = 0


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise UsageError(
            f"unknown timezone {name!r}", hint="use an IANA name such as Europe/Berlin or UTC"
        ) from error


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one (as SQLite returns them) is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _repeated_wall_time(tick: datetime, tz: ZoneInfo) -> bool:
    """True for the second occurrence of a wall time the autumn change repeats."""
    wall = tick.replace(tzinfo=None)
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    return first != second and tick.utcoffset() == second


def _fixed_hours(cron: str) -> bool:
    hours = croniter(cron).expanded[1]
    return hours != ["*"]


def _ticks(cron: str, tz: ZoneInfo, start: datetime, *, backwards: bool) -> Iterator[datetime]:
    """Cron ticks in UTC from ``start`` (exclusive), one per wall time when hours are fixed."""
    skip_repeats = _fixed_hours(cron)
    it = croniter(cron, start.astimezone(tz))
    while True:
        tick: datetime = it.get_prev(datetime) if backwards else it.get_next(datetime)
        if skip_repeats and _repeated_wall_time(tick, tz):
            continue
        yield tick.astimezone(UTC)


def latest_tick(cron: str, timezone: str, now: datetime) -> datetime:
    """The latest tick at or before ``now``, in UTC."""
    now = utc(now)
    # croniter's get_prev is strictly before its start; start just after now so that a
    # tick exactly at now counts, then step back over any that are still in the future.
    for tick in _ticks(cron, zone(timezone), now + timedelta(seconds=1), backwards=True):
        if tick <= now:
            return tick
    raise AssertionError("unreachable: croniter yields ticks forever")


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first tick strictly after ``after``, in UTC (``sweep show``'s next fire time)."""
    return next(_ticks(cron, zone(timezone), utc(after), backwards=False))


def ticks_between(cron: str, timezone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every tick in (start, end], in UTC (tests and back-fill use it)."""
    found: list[datetime] = []
    for tick in _ticks(cron, zone(timezone), utc(start), backwards=False):
        if tick > utc(end):
            return found
        found.append(tick)
    return found


def due_fire(
    sweep: SweepSchedule,
    *,
    now: datetime,
    grace: timedelta,
    last_night: datetime | None = None,
    up_since: datetime | None = None,
    on_time: timedelta = timedelta(seconds=ON_TIME_S),
) -> DueFire | None:
    """The night of ``sweep`` due at ``now``, or None.

    ``last_night`` is the latest scheduled time that already has a night (None: none);
    it only decides whether the latest tick is taken and how many ticks were skipped.
    A tick is always taken within ``on_time``, whatever the grace (a grace of 0 drops
    missed fires, never a fire the scheduler is merely a few seconds late for).

    Late: taken more than ``on_time`` after the tick, or a tick that fell before this
    scheduler was up (``up_since``: a coordinator restarting finds it unclaimed, so no
    coordinator was running then either).
    """
    if sweep.paused:
        return None
    now, since = utc(now), utc(sweep.since)
    tick = latest_tick(sweep.cron, sweep.timezone, now)
    if tick <= since:
        return None
    if last_night is not None and utc(last_night) >= tick:
        return None
    delay = now - tick
    if delay > max(grace, on_time):
        return None
    # Skipped: the ticks this fire stands for (within the grace, after the last night).
    floor = max(since, now - max(grace, on_time))
    if last_night is not None:
        floor = max(floor, utc(last_night))
    skipped = 0
    for earlier in _ticks(sweep.cron, zone(sweep.timezone), tick, backwards=True):
        if earlier <= floor or skipped >= _MAX_COUNTED:
            break
        skipped += 1
    missed = up_since is not None and tick < utc(up_since)
    return DueFire(sweep.sweep_id, sweep.name, tick, late=delay > on_time or missed,
                   skipped=skipped)  # fmt: skip
