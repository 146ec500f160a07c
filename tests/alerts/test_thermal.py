"""The thermal state as a cause (issue 18 attribution): a class that runs hot from a night
on is one alert naming the class and the heat, on nights written as ingest leaves them
(SQLite and PostgreSQL); the SIMULATED farm's ``hot`` timeline action makes a device report
that state and throttle; and, through the real pipeline (Redis, coordinator, Celery workers
of a SIMULATED farm), a hot class's regression alert says the night was throttled."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from agents.devices.simulated import build_farm
from agents.devices.simulation.thermal import THROTTLE
from orchestrator.alerts.inputs import histories
from orchestrator.alerts.report import build
from orchestrator.alerts.views import show_alert
from orchestrator.errors import UsageError
from orchestrator.protocol import ThermalState
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.agents.models import conv_net, manifest
from tests.alerts.nightfarm import (
    CLASSES,
    SERIES,
    Point,
    Sweep,
    add_run,
    make_sweep,
    summaries,
)
from tests.pipeline.farm import Farm
from tests.services.common import provides

HOT = CLASSES[1]
THROTTLED = "thermal state nominal → serious (throttled tonight)"


def night_with(sweep: Sweep, point: Callable[[str, str], Point],
               thermal: Callable[[str], str | None]) -> uuid.UUID:  # fmt: skip
    """A night as ingest leaves it, each run with the thermal state its class reported."""
    job_id = sweep.add_night(point)
    with session_scope(sweep.sessions) as session:
        for run in session.scalars(select(db.Run).where(db.Run.job_id == job_id)):
            run.thermal_state = thermal(run.device_class)
    return job_id


def cool(_cls: str) -> str:
    return "nominal"


def hot_from_tonight(cls: str) -> str:
    return "serious" if cls == HOT else "nominal"


def test_a_class_running_hot_is_one_alert_naming_the_class_and_the_heat(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    for _ in range(7):
        night_with(sweep, lambda s, c: Point(), cool)
        assert sweep.analyse().state == "analysed"
    assert summaries(sessions) == []
    throttled = lambda s, c: Point(median=12.5 if c == HOT else 10.0)  # noqa: E731  ×1.25
    for _ in range(2):
        night_with(sweep, throttled, hot_from_tonight)
        sweep.analyse()
    (summary,) = summaries(sessions)
    assert summary.kind == "regression" and summary.nights == 2
    assert summary.cause.startswith(f"SIMULATED {HOT}, {THROTTLED}: latency +2")
    assert summary.cause.endswith("(median) on 3 models × 1 device class")
    assert "device/OS unchanged" not in summary.cause
    with sessions() as session:
        shown = show_alert(session, summary.id)
        report = build(session, session.get(db.Sweep, sweep.sweep_id), None).to_json()
    latency = [f for f in shown["findings"] if f["check"] == "latency"]
    assert {f["device_class"] for f in latency} == {HOT}
    assert {f["series"] for f in latency} == set(SERIES)
    for f in latency:
        assert f["detail"]["attribution"] == THROTTLED
        assert f["detail"]["changes"] == [
            {"name": "thermal state", "before": "nominal", "after": "serious"}
        ]
    checks = [c for c in report["checks"] if c["check"] == "latency" and c["device_class"] == HOT]
    assert checks and {c["status"] for c in checks} == {"REGRESSION"}
    # `sweep report --json` (and its JUnit messages) carry the attribution.
    assert all(c["detail"]["attribution"] == THROTTLED for c in checks)


def test_runs_stored_before_thermal_states_read_as_unknown(sessions, tmp_path):
    # Nights from before migration 0011 (NULL) then a hot one: the baseline is unknown,
    # tonight throttled, so the alert still says so; cool nights after unknown say nothing.
    sweep = make_sweep(sessions, tmp_path)
    for _ in range(7):
        night_with(sweep, lambda s, c: Point(), lambda c: None)
        sweep.analyse()
    night_with(sweep, lambda s, c: Point(), cool)
    sweep.analyse()
    assert summaries(sessions) == []
    night_with(sweep, lambda s, c: Point(median=12.5 if c == HOT else 10.0), hot_from_tonight)
    sweep.analyse()
    night_with(sweep, lambda s, c: Point(median=12.5 if c == HOT else 10.0), hot_from_tonight)
    sweep.analyse()
    (summary,) = summaries(sessions)
    # The baseline's usual state: its one known night (nominal), not the unknown ones.
    assert THROTTLED in summary.cause


def test_a_night_is_as_hot_as_the_hottest_run_in_its_figure(sessions, tmp_path):
    # A repeat (or confirmation) run's samples are part of the night: so is its heat.
    sweep = make_sweep(sessions, tmp_path)
    job_id = night_with(sweep, lambda s, c: Point(), cool)
    with session_scope(sessions) as session:
        nightly = session.scalars(select(db.Run).where(
            db.Run.job_id == job_id, db.Run.series == SERIES[0], db.Run.device_class == HOT
        )).one()  # fmt: skip
        repeat = add_run(session, job_id, SERIES[0], HOT, nightly.model_sha256, Point(), 10.0,
                         np.random.default_rng(1), parent=nightly.id)  # fmt: skip
        repeat.probe_repeat, repeat.thermal_state = 1, "serious"
    with sessions() as session:
        found, _, _ = histories(session, session.get(db.Sweep, sweep.sweep_id),
                                datetime.now(UTC))  # fmt: skip
    heat = {(h.key.series, h.key.device_class): h.points[-1].conditions.thermal_state
            for h in found}  # fmt: skip
    assert heat[(SERIES[0], HOT)] == "serious"
    assert heat[(SERIES[1], HOT)] == "nominal" and heat[(SERIES[0], CLASSES[0])] == "nominal"


# -- the SIMULATED farm's `hot` action ----------------------------------------------------

N = date(2026, 3, 6)
FARM = f"""\
seed: 3
devices:
  - {{product_type: "iPhone13,2"}}
  - {{product_type: "iPhone15,2"}}
noise: {{run_to_run_sigma: 0}}
timeline:
  - {{from: {N}, until: {N + timedelta(days=2)}, hot: {{class: "iPhone13,2"}}}}
"""


def test_a_hot_class_reports_serious_and_throttles_from_its_night_only(tmp_path: Path):
    path = tmp_path / "farm.yaml"
    path.write_text(FARM)
    hot, other = build_farm(path)
    model = conv_net(layers=2, size=32)  # small: its own load never heats the device

    def measure(dev, night, batch):
        dev.at_night(night)
        result = dev.simulate_batch(manifest(model, batch_id=batch), model, 600)[0]
        stats = result.settings[0].stats
        assert stats is not None
        return result, stats.p50

    cool_result, cool_ms = measure(hot, N - timedelta(days=1), "b0")
    hot_result, hot_ms = measure(hot, N, "b1")
    after_result, after_ms = measure(hot, N + timedelta(days=2), "b2")
    assert (cool_result.thermal_before, cool_result.thermal_after) == ("nominal", "nominal")
    assert (hot_result.thermal_before, hot_result.thermal_after) == ("serious", "serious")
    assert after_result.thermal_after == "nominal"  # `until`: it cools down again
    assert hot_ms / cool_ms == pytest.approx(THROTTLE[ThermalState.SERIOUS], rel=0.03)
    assert after_ms == pytest.approx(cool_ms, rel=0.03)
    other_result, _ = measure(other, N, "b3")
    assert other_result.thermal_after == "nominal"  # only the class named


def test_a_hot_entry_that_cannot_be_is_one_line(tmp_path: Path):
    from agents.devices.simulation.farm import parse_farm

    path = tmp_path / "farm.yaml"
    path.write_text(FARM.replace('hot: {class: "iPhone13,2"}',
                                 'hot: {class: "iPhone13,2", state: critical}'))  # fmt: skip
    with pytest.raises(UsageError) as caught:
        parse_farm(path)
    assert "timeline entry 1: hot: state must be one of fair, serious, not critical" in str(
        caught.value
    )
    path.write_text(FARM.replace('hot: {class: "iPhone13,2"}', 'hot: {class: "iPhone12,1"}'))
    with pytest.raises(UsageError, match=r"hot\.class 'iPhone12,1' is not a device class"):
        parse_farm(path)


# -- through the real pipeline -------------------------------------------------------------

PIPE_HOT, PIPE_COOL = "iPhone13,2", "iPhone15,2"
PIPE_MODELS = ("conv10x10", "maxpool15")
PIPE_FARM = f"""\
seed: 7
devices:
  - {{product_type: "{PIPE_HOT}", os: "17.4", count: 1}}
  - {{product_type: "{PIPE_COOL}", os: "17.4", count: 1}}
noise: {{seed: 11, run_to_run_sigma: 0.01}}
timeline:
  - {{from: 2026-03-06, hot: {{class: "{PIPE_HOT}", state: serious}}}}  # SIMULATED
"""


def run_night(farm: Farm, n: int, timeout: float = 120) -> None:
    """`sweep run hot --at` night ``n`` of March, then wait for the coordinator's analysis."""
    job = farm.cli("sweep", "run", "hot", "--at", f"2026-03-{n:02d}T02:00").stdout.strip()
    deadline = time.monotonic() + timeout
    with farm.sessions()() as session:
        while time.monotonic() < deadline:
            state = session.get(db.NightAnalysis, uuid.UUID(job))
            if state is not None and state.state in ("analysed", "error"):
                assert state.state == "analysed", state.error
                return
            session.expire_all()
            farm._check()
            time.sleep(0.2)
    raise AssertionError(f"night {n} not analysed\n{farm.logs()}")


def alerts(farm: Farm) -> list[dict[str, Any]]:
    return list(json.loads(farm.cli("alerts", "list", "--json").stdout)["alerts"])


@pytest.fixture
@provides("celery")
def farm(tmp_path: Path, redis_url: str) -> Iterator[Farm]:
    farm = Farm.at(tmp_path, redis_url)
    (tmp_path / "farm.yaml").write_text(PIPE_FARM, encoding="utf-8")
    farm.start_coordinator()
    farm.start_agent(str(tmp_path / "farm.yaml"), wait_for=2)
    yield farm
    farm.kill()  # a teardown: no warm shutdown to wait for


@pytest.mark.slow
def test_a_simulated_class_running_hot_from_night_6_is_alerted_as_throttled(
    farm, samples, tmp_path
):
    folder = tmp_path / "sweep"
    (folder / "models").mkdir(parents=True)
    for name in PIPE_MODELS:
        shutil.copytree(samples[f"{name}.mlpackage"], folder / "models" / f"{name}.mlpackage")
    (folder / "hot.yaml").write_text(
        'name: hot\nschedule: "0 2 * * *"\ntimezone: UTC\nmodels:\n'
        "  - path: models/*.mlpackage\n"
        f'devices: "{PIPE_HOT},{PIPE_COOL}"\ncompute_units: [all]\niterations: 12\n'
        "warmup: 1\nbisect: never\n",
        encoding="utf-8",
    )
    farm.cli("sweep", "add", str(folder / "hot.yaml"))
    for n in range(1, 8):
        run_night(farm, n)
        if n == 5:
            assert alerts(farm) == [], alerts(farm)
    (alert,) = alerts(farm)
    assert alert["kind"] == "regression" and alert["device_classes"] == [PIPE_HOT]
    assert THROTTLED in alert["cause"] and PIPE_HOT in alert["cause"]
    shown = farm.cli("alerts", "show", str(alert["id"])).stdout
    assert THROTTLED in shown
    with farm.sessions()() as session:
        stored = {(r.device_class, r.thermal_state) for r in session.scalars(
            select(db.Run).where(db.Run.series.is_not(None)))}  # fmt: skip
    # Ingest kept what the SIMULATED devices reported: the hot class serious from night 6.
    assert (PIPE_HOT, "serious") in stored and (PIPE_COOL, "serious") not in stored
    assert (PIPE_HOT, "nominal") in stored
