"""Which night is due when (orchestrator/sweeps/schedule.py): pure functions of a cron, a
timezone and an injected clock — on time, late, missed ticks collapsed, grace, pause, DST."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import UsageError
from orchestrator.sweeps.schedule import (
    ON_TIME_S,
    SweepSchedule,
    due_fire,
    latest_tick,
    next_fire,
    ticks_between,
)

SIX_HOURS = timedelta(hours=6)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sweep(cron: str = "0 2 * * *", *, tz: str = "UTC", paused: bool = False,
          since: str = "2026-11-01T00:00:00") -> SweepSchedule:  # fmt: skip
    return SweepSchedule(uuid.uuid4(), "vision-nightly", cron, tz, paused, at(since))


def test_a_fire_taken_within_a_minute_is_on_time():
    fire = due_fire(sweep(), now=at("2026-11-27T02:00:04"), grace=SIX_HOURS)
    assert fire is not None
    assert fire.scheduled_for == at("2026-11-27T02:00:00") and fire.scheduled_for.tzinfo == UTC
    assert not fire.late and fire.skipped == 0


def test_a_tick_exactly_now_is_due_and_one_a_second_away_is_not():
    assert due_fire(sweep(), now=at("2026-11-27T02:00:00"), grace=SIX_HOURS) is not None
    yesterday = due_fire(sweep(), now=at("2026-11-27T01:59:59"), grace=SIX_HOURS)
    assert yesterday is None  # yesterday's 02:00 is 24 h old: past the grace


def test_a_tick_that_has_its_night_is_not_due_again():
    last = at("2026-11-27T02:00:00")
    assert (
        due_fire(sweep(), now=at("2026-11-27T02:00:30"), grace=SIX_HOURS, last_night=last) is None
    )
    # A manual night started after the tick (`sweep run` at 02:00:20) covers it too.
    manual = at("2026-11-27T02:00:20")
    assert (
        due_fire(sweep(), now=at("2026-11-27T02:00:30"), grace=SIX_HOURS, last_night=manual) is None
    )
    # Yesterday's night does not.
    older = at("2026-11-26T02:00:00")
    fire = due_fire(sweep(), now=at("2026-11-27T02:00:30"), grace=SIX_HOURS, last_night=older)
    assert fire is not None and fire.skipped == 0


def test_missed_ticks_collapse_into_one_late_fire():
    hourly = sweep("0 * * * *", since="2026-11-27T00:30:00")
    fire = due_fire(hourly, now=at("2026-11-27T05:20:00"), grace=SIX_HOURS)
    assert fire is not None
    assert fire.scheduled_for == at("2026-11-27T05:00:00")  # the latest tick only
    assert fire.late
    assert fire.skipped == 4  # 01:00 … 04:00 are not run, only counted
    fire = due_fire(hourly, now=at("2026-11-27T05:20:00"), grace=SIX_HOURS,
                    last_night=at("2026-11-27T03:00:00"))  # fmt: skip
    assert fire is not None and fire.skipped == 1


def test_a_fire_is_late_only_past_the_on_time_window():
    just = due_fire(sweep(), now=at("2026-11-27T02:00:00") + timedelta(seconds=ON_TIME_S),
                    grace=SIX_HOURS)  # fmt: skip
    past = due_fire(sweep(), now=at("2026-11-27T02:01:01"), grace=SIX_HOURS)
    assert just is not None and not just.late
    assert past is not None and past.late


def test_a_tick_that_fell_before_the_scheduler_was_up_is_late():
    # The coordinator restarted at 02:00:20: nobody took 02:00, so its night is late.
    fire = due_fire(sweep(), now=at("2026-11-27T02:00:25"), grace=SIX_HOURS,
                    up_since=at("2026-11-27T02:00:20"))  # fmt: skip
    assert fire is not None and fire.late
    running = due_fire(sweep(), now=at("2026-11-27T02:00:25"), grace=SIX_HOURS,
                       up_since=at("2026-11-27T01:00:00"))  # fmt: skip
    assert running is not None and not running.late


def test_grace_bounds_how_late_a_missed_fire_still_runs():
    inside = due_fire(sweep(), now=at("2026-11-27T07:59:00"), grace=SIX_HOURS)
    assert inside is not None and inside.late
    assert due_fire(sweep(), now=at("2026-11-27T08:00:01"), grace=SIX_HOURS) is None
    longer = due_fire(sweep(), now=at("2026-11-27T08:00:01"), grace=timedelta(hours=7))
    assert longer is not None and longer.late


def test_a_grace_of_zero_drops_missed_fires_but_not_a_fire_being_taken():
    zero = timedelta(0)
    assert due_fire(sweep(), now=at("2026-11-27T02:00:10"), grace=zero) is not None
    assert due_fire(sweep(), now=at("2026-11-27T02:05:00"), grace=zero) is None


def test_a_paused_sweep_holds_its_fire():
    assert due_fire(sweep(paused=True), now=at("2026-11-27T02:00:04"), grace=SIX_HOURS) is None


def test_ticks_before_the_definition_was_stored_never_fire():
    # Added (or resumed, or re-scheduled) at 02:10: tonight's 02:00 is not owed.
    added = sweep(since="2026-11-27T02:10:00")
    assert due_fire(added, now=at("2026-11-27T02:10:05"), grace=SIX_HOURS) is None
    assert due_fire(added, now=at("2026-11-28T02:00:05"), grace=SIX_HOURS) is not None


def test_cron_is_evaluated_in_the_sweeps_timezone():
    berlin = sweep(tz="Europe/Berlin", since="2026-01-01T00:00:00")
    winter = due_fire(berlin, now=at("2026-11-27T01:00:03"), grace=SIX_HOURS)
    assert winter is not None and winter.scheduled_for == at("2026-11-27T01:00:00")  # CET
    summer = due_fire(berlin, now=at("2026-07-01T00:00:03"), grace=SIX_HOURS)
    assert summer is not None and summer.scheduled_for == at("2026-07-01T00:00:00")  # CEST
    assert next_fire("0 2 * * *", "Europe/Berlin", at("2026-11-27T01:00:00")) == at(
        "2026-11-28T01:00:00"
    )


def test_a_nightly_cron_fires_once_per_local_day_across_both_dst_changes():
    # Europe/Berlin 2026: 02:00 → 03:00 on 29 March, 03:00 → 02:00 on 25 October.
    spring = ticks_between("30 2 * * *", "Europe/Berlin", at("2026-03-27T12:00:00"),
                           at("2026-03-31T12:00:00"))  # fmt: skip
    assert spring == [at("2026-03-28T01:30:00"), at("2026-03-29T01:00:00"),  # 02:30 skipped: 03:00
                      at("2026-03-30T00:30:00"), at("2026-03-31T00:30:00")]  # fmt: skip
    autumn = ticks_between("30 2 * * *", "Europe/Berlin", at("2026-10-23T12:00:00"),
                           at("2026-10-27T12:00:00"))  # fmt: skip
    # 02:30 happens twice on the 25th (00:30 and 01:30 UTC): one night, at the first.
    assert autumn == [at("2026-10-24T00:30:00"), at("2026-10-25T00:30:00"),
                      at("2026-10-26T01:30:00"), at("2026-10-27T01:30:00")]  # fmt: skip


def test_due_fires_walk_through_the_autumn_change_without_a_second_night():
    berlin = sweep("30 2 * * *", tz="Europe/Berlin", since="2026-10-24T12:00:00")
    nights: list[datetime] = []
    now = at("2026-10-24T12:00:00")
    while now < at("2026-10-26T12:00:00"):  # a scheduler passing every 30 s
        fire = due_fire(berlin, now=now, grace=SIX_HOURS, last_night=max(nights, default=None))
        if fire is not None:
            assert not fire.late
            nights.append(fire.scheduled_for)
        now += timedelta(seconds=30)
    assert nights == [at("2026-10-25T00:30:00"), at("2026-10-26T01:30:00")]


def test_an_interval_cron_keeps_its_ticks_in_the_repeated_hour():
    # "every 20 minutes" is elapsed time: the repeated hour 02:00-03:00 gets its ticks.
    ticks = ticks_between("*/20 * * * *", "Europe/Berlin", at("2026-10-24T23:30:00"),
                          at("2026-10-25T02:00:00"))  # fmt: skip
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert steps == {timedelta(minutes=20)} and len(ticks) == 8


def test_latest_tick_is_at_or_before_now():
    assert latest_tick("*/5 * * * *", "UTC", at("2026-11-27T10:04:59")) == at("2026-11-27T10:00:00")
    assert latest_tick("*/5 * * * *", "UTC", at("2026-11-27T10:05:00")) == at("2026-11-27T10:05:00")
    # A naive time (as SQLite returns them) is UTC.
    naive = datetime(2026, 11, 27, 10, 7)
    assert latest_tick("*/5 * * * *", "UTC", naive) == at("2026-11-27T10:05:00")


def test_an_unknown_timezone_is_one_usage_error():
    with pytest.raises(UsageError) as raised:
        due_fire(sweep(tz="Mars/Olympus"), now=at("2026-11-27T02:00:00"), grace=SIX_HOURS)
    assert "Mars/Olympus" in raised.value.one_line()
