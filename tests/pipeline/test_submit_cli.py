"""`anefarm submit` as a user runs it against a small farm: which classes a selector means,
runs that wait for a device, `--wait` with its progress, time limit and exit codes, and
`anefarm cancel` with and without a broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.report import build_report, job_status
from tests.faults.invariants import assert_exactly_once
from tests.pipeline.farm import Farm
from tests.services.common import provides

XR, XS, IPHONE12 = "iPhone11,8", "iPhone11,2", "iPhone13,2"


@pytest.fixture
@provides("celery")  # Farm.at starts the agent's Celery workers
def farm(tmp_path: Path, redis_url: str) -> Iterator[Farm]:
    farm = Farm.at(tmp_path, redis_url)
    yield farm
    farm.kill()  # a teardown: nothing is asserted about the shutdown


def _status(farm: Farm, job: str) -> dict:
    with farm.sessions()() as session:
        return job_status(session, job)


def _report(farm: Farm, job: str) -> dict:
    with farm.sessions()() as session:
        return build_report(session, job)


def test_chip_selectors_mean_the_classes_the_farm_has(farm, samples):
    # The README's example on a farm of three devices: 2 classes, not the catalog's 100+.
    farm.start_coordinator()
    farm.start_agent(f"{XR}=2,{IPHONE12}=1", wait_for=3)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", "A12,chip>=A14",
                   "--no-bisect", "--json")  # fmt: skip
    body = json.loads(out.stdout)
    assert body["runs"] == 2 and body["waiting"] == 0, body
    assert f"job {body['job']}: 2 run(s) on 2 device class(es)" in out.stderr
    report = farm.wait_job(body["job"])
    assert sorted(r["device_class"] for r in report["rows"]) == [XR, IPHONE12]


def test_a_selector_no_device_matches_is_a_usage_error(farm, samples):
    farm.start_agent(f"{XR}=1", wait_for=1)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", "A14",
                   check=False)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "no device of the farm matches 'A14'" in out.stderr
    assert XR in out.stderr and "Traceback" not in out.stderr


def test_a_named_class_without_a_device_waits_then_runs_when_one_comes(farm, samples):
    farm.start_coordinator()
    farm.start_agent(f"{XR}=1", wait_for=1)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices",
                   f"{XR},{IPHONE12}", "--no-bisect")  # fmt: skip
    job = out.stdout.strip()
    assert f"no live device for {IPHONE12} (A14): its runs wait for one" in out.stderr
    assert "1 waiting for a device" in out.stderr
    deadline = time.monotonic() + 60
    while _status(farm, job)["by_status"].get("succeeded") != 1:
        assert time.monotonic() < deadline, farm.logs()
        time.sleep(0.2)
    status = _status(farm, job)
    assert status["by_status"] == {"succeeded": 1, "waiting": 1} and not status["done"]
    line = farm.cli("status", job).stdout
    assert f"; waiting for a device: {IPHONE12} since {status['waiting'][IPHONE12]} UTC" in line
    [waiting] = [r for r in _report(farm, job)["rows"] if r["status"] == "waiting"]
    assert waiting["device_class"] == IPHONE12 and waiting["waiting_since"]
    table = farm.cli("report", job, check=False)
    assert table.returncode == 4  # not every run ran (yet)
    assert "A14 12: waiting for a device of the class since" in table.stdout  # iPhone 12
    matrix = [line for line in table.stdout.splitlines() if line.startswith("conv10x10 ")]
    assert "waiting" in matrix[0]  # and in the verdict matrix
    farm.start_agent(f"{IPHONE12}=1", name="agent-2", wait_for=2)
    report = farm.wait_job(job, timeout=60)
    assert [r["status"] for r in report["rows"]] == ["succeeded", "succeeded"]
    assert farm.cli("report", job, check=False).returncode == 0
    assert_exactly_once(farm, job)


def test_a_run_that_waits_too_long_for_a_device_fails(farm, samples):
    farm.extra_env["ANEFARM_DEVICE_WAIT_S"] = "2"
    farm.start_coordinator()
    farm.start_agent(f"{XR}=1", wait_for=1)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", IPHONE12)
    report = farm.wait_job(out.stdout.strip(), timeout=60)
    [row] = report["rows"]
    assert row["status"] == "failed"
    assert row["error"].startswith(f"no_device: no device of {IPHONE12} was live within")


def test_wait_prints_the_job_first_and_one_line_per_change_then_exits_by_outcome(farm, samples):
    farm.start_coordinator()
    farm.start_agent(f"{XR}=1", wait_for=1)
    model = str(samples["conv10x10_dilated4.mlpackage"])  # not FULL on A12
    out = farm.cli("submit", model, "--devices", XR, "--wait", "--no-bisect", check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("job ") and "1 run(s) on 1 device class(es)" in lines[0]
    job = lines[0].split()[1].rstrip(":")
    progress = [line for line in lines if line.startswith(f"job {job}: ")]
    assert progress[-1] == f"job {job}: done, 1/1 runs finished (succeeded: 1)", lines
    assert len(progress) == len(set(progress)), "a line per change, not per poll"
    assert "NONE" in out.stdout or "PARTIAL" in out.stdout  # the report follows
    gated = farm.cli("report", job, "--fail-on", "not-full", check=False)
    assert gated.returncode == 3, gated.stderr


def test_wait_exits_4_when_every_run_failed(farm, samples):
    farm.start_coordinator()
    # Every batch on this device fails to compile: a model failure, final.
    farm.start_agent(f"{XR}=1!compilefail", wait_for=1)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", XR,
                   "--wait", check=False)  # fmt: skip
    assert out.returncode == 4, out.stderr


def test_wait_timeout_exits_4_and_the_job_goes_on(farm, samples):
    farm.start_agent(f"{XR}=1", wait_for=1)  # no coordinator: nothing is ever ingested
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", XR, "--wait",
                   "--wait-timeout", "1", check=False)  # fmt: skip
    assert out.returncode == 4, out.stderr
    assert "not done after 1 s (it goes on)" in out.stderr


def test_cancel_without_a_broker_cancels_in_the_database(farm, samples):
    farm.start_agent(f"{XR}=1", wait_for=1)
    out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", f"{XR},{XS}")
    job = out.stdout.strip()
    farm.stop()  # the farm and its broker's users are gone
    farm.extra_env["ANEFARM_BROKER_URL"] = ""
    out = farm.cli("cancel", job)
    assert "2 unfinished run(s) cancelled; no broker configured, database only" in out.stdout
    status = _status(farm, job)
    assert status["status"] == "cancelled" and status["by_status"] == {"cancelled": 2}
    assert status["done"]


def test_profile_with_a_selector_the_farm_lacks_is_refused_up_front(tmp_path, samples):
    # Seen: exit 0 with an empty job that stayed "queued (0 runs)" for ever.
    farm = Farm.at(tmp_path, "redis://127.0.0.1:1/0")  # never reached: refused before
    out = farm.cli("profile", str(samples["conv10x10.mlpackage"]), "--simulate", f"{XR}=1",
                   "--devices", "A14", check=False)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "no device of the farm matches 'A14' (the farm has: iPhone11,8)" in out.stderr
