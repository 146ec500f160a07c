"""The issue's acceptance for scheduling, with real processes: two `anefarm coordinator`
processes on one PostgreSQL and one Redis (and a SIMULATED farm) fire a sweep due every
minute. Their scheduler clock runs faster (``ANEFARM_SWEEP_CLOCK_ANCHOR``/``_SPEED``: a
minute in a few seconds); every night is still claimed through the database's unique key
and ``start_night``, exactly as in production."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.protocol.transport import create_app
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps import store
from orchestrator.sweeps.schedule import ticks_between
from orchestrator.sweeps.scheduler_loop import warped_clock
from tests.pipeline.farm import Farm
from tests.services.databases import migrate_to_head
from tests.sweeps.test_schedule_claim import XR, store_sweep, stored_nights, tiny_model, when

EVERY_MINUTE = "* * * * *"
COORDINATORS = ("coordinator", "coordinator-2")


def farm_with_two_coordinators(tmp_path: Path, redis_url: str, pg_url: str,
                               speed: float) -> tuple[Farm, float]:  # fmt: skip
    farm = Farm.at(tmp_path, redis_url)
    farm.database_url = pg_url
    anchor = time.time()
    farm.extra_env = {
        "ANEFARM_SWEEP_CLOCK_ANCHOR": repr(anchor),
        "ANEFARM_SWEEP_CLOCK_SPEED": str(speed),
        "ANEFARM_SWEEP_TICK_S": "0.2",
    }
    # Migrated once here (a copy of the session's migrated template): two coordinators must
    # not race the migration; each then finds the schema at head.
    migrate_to_head(pg_url)
    farm.sessions()
    return farm, anchor


def start_coordinators(farm: Farm) -> None:
    for name in COORDINATORS:
        farm._spawn(name, "coordinator")
    control = create_app(load_settings(broker_url=farm.broker_url))
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            replies = control.control.ping(timeout=0.5)
            if sum(1 for r in replies for host in r if host.startswith("coordinator@")) >= 2:
                return
            farm._check()
        raise AssertionError(f"the two coordinators did not come up\n{farm.logs()}")
    finally:
        control.close()


def stop_coordinators(farm: Farm) -> None:
    """SIGTERM to both at once (Ctrl-C's warm shutdown), then wait for them to exit."""
    procs = [farm.procs.pop(name) for name in COORDINATORS]
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # and its pool child
            proc.wait()
            raise AssertionError(f"a coordinator ignored SIGTERM for 30 s\n{farm.logs()}") from None
        assert proc.returncode == 0, f"coordinator exited with {proc.returncode}\n{farm.logs()}"


def wait_nights(farm: Farm, sweep_id: object, count: int, timeout: float = 90) -> list[db.Job]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = stored_nights(farm.sessions(), sweep_id)  # type: ignore[arg-type]
        if len(found) >= count:
            return found
        farm._check()
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} nights after {timeout} s\n{farm.logs()}")


def wait_clock(clock: object, moment: datetime, farm: Farm) -> None:
    while clock() < moment:  # type: ignore[operator]
        farm._check()
        time.sleep(0.1)


@pytest.mark.celery  # the farm starts Celery workers in the test body
@pytest.mark.slow
def test_two_coordinators_fire_a_sweep_due_every_minute_exactly_once_per_minute(
    tmp_path, redis_url, pg_url
):
    # A minute in 7.5 s: a night is on time within a (warped) minute of its fire, so a
    # pass may be 7 s late on a loaded machine; the pause has 5 s to land before the 6th.
    speed = 8.0
    farm, anchor = farm_with_two_coordinators(tmp_path, redis_url, pg_url, speed)
    clock = warped_clock(anchor, speed)
    try:
        farm.start_agent(f"{XR}=1", wait_for=1)
        start_coordinators(farm)
        since = clock()
        model = tiny_model(tmp_path / "models" / "detector.mlmodel", seed=1)
        sweep_id = store_sweep(farm.sessions(), [model], cron=EVERY_MINUTE, since=since)
        fires = ticks_between(EVERY_MINUTE, "UTC", since, since + timedelta(minutes=6))
        # Five minutes of the schedule: past the fifth fire, `sweep pause` well before the
        # sixth (a pause committed before a tick holds it in every coordinator's next pass).
        wait_clock(clock, fires[4] + timedelta(seconds=20), farm)
        with session_scope(farm.sessions()) as session:
            assert store.set_paused(session, "nightly", True)  # what `sweep pause` does
        paused = clock()
        assert paused < fires[5], f"too slow a machine: paused at {paused}, after the 6th fire"
        wait_clock(clock, fires[5] + timedelta(seconds=30), farm)  # held past the 6th
        # Its batches (published in a pipeline) reached the SIMULATED device and came back.
        first = stored_nights(farm.sessions(), sweep_id)[0]
        report = farm.wait_job(str(first.id), timeout=120)
        assert report["simulated"] is True and report["rows"], report
        assert {row["status"] for row in report["rows"]} == {"succeeded"}, report["rows"]
        stop_coordinators(farm)
        nights = stored_nights(farm.sessions(), sweep_id)
        assert [when(n) for n in nights] == fires[:5]  # one night per minute, no duplicate
        assert all(n.trigger == db.NightTrigger.SCHEDULE and not n.late for n in nights)
        with farm.sessions()() as session:
            runs = session.execute(
                select(db.Run.job_id, db.Run.series, db.Run.device_class).where(
                    db.Run.job_id.in_([n.id for n in nights])
                )
            ).all()
        # Each night is a real night of the sweep: its run of the series on the farm's class.
        assert sorted((job, series, cls) for job, series, cls in runs) == sorted(
            (n.id, "detector", XR) for n in nights
        )
    finally:
        farm.kill()  # a teardown: no warm shutdown to wait for


@pytest.mark.celery
@pytest.mark.slow
def test_coordinators_down_across_fire_times_start_one_late_night(tmp_path, redis_url, pg_url):
    speed = 12.0  # a minute in 5 s
    farm, anchor = farm_with_two_coordinators(tmp_path, redis_url, pg_url, speed)
    clock = warped_clock(anchor, speed)
    try:
        start_coordinators(farm)
        since = clock()
        model = tiny_model(tmp_path / "models" / "detector.mlmodel", seed=1)
        sweep_id = store_sweep(farm.sessions(), [model], cron=EVERY_MINUTE, since=since)
        wait_nights(farm, sweep_id, 1)
        stop_coordinators(farm)
        before = stored_nights(farm.sessions(), sweep_id)  # fired while they were up
        down = clock()
        # Every coordinator down for three and a half minutes: three fires missed.
        wait_clock(clock, down + timedelta(minutes=3, seconds=30), farm)
        restarted = clock()
        start_coordinators(farm)
        nights = wait_nights(farm, sweep_id, len(before) + 1)
        stop_coordinators(farm)
        last_up = when(before[-1])
        missed = ticks_between(EVERY_MINUTE, "UTC", last_up, restarted)
        assert len(missed) >= 3
        seen = [(when(n).isoformat(), n.late) for n in nights]
        after = sorted((n for n in nights if when(n) > last_up), key=when)
        late = after[0]
        # The latest missed fire (or a later one) is caught up, marked late; none of the
        # earlier missed fires runs. (A fire after the restart may be marked late as well:
        # a tick older than the scheduler that fires it fell while that one was down, and
        # on a loaded machine the second coordinator can come up a warped minute after the
        # first — fresh-clone run 10.)
        assert late.late and late.trigger == db.NightTrigger.SCHEDULE, f"{seen}\n{farm.logs()}"
        assert when(late) >= missed[-1], seen
        assert [n for n in after if when(n) < missed[-1]] == [], seen
        assert not any(n.late for n in before), seen
    finally:
        farm.kill()  # a teardown: no warm shutdown to wait for
