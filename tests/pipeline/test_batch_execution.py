"""agents.batch: readiness → fetch → run → classify, with a scripted device at the
Device boundary (the simulated farm has its own tests; this pins the classification)."""

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from agents.batch import execute, manifest_for
from agents.devices.base import DeviceIdentity, Diagnostics, Readiness
from agents.outcome import classify
from orchestrator.errors import ArtifactError, DeviceGone, ProtocolError, RunnerTimeout
from orchestrator.protocol import (
    BatchOutcome,
    DeviceFacts,
    LatencyStats,
    ModelRef,
    RunBatch,
    RunnerError,
    RunnerResult,
    RunSpec,
    SettingResult,
)
from orchestrator.stats import summarize

SHA = "d" * 64


class ScriptedDevice:
    """Answers run() with a prepared result or exception."""

    def __init__(self, outcome, *, reasons=()):
        self.outcome = outcome
        self.reasons = list(reasons)
        self.identity = DeviceIdentity("SIM-X-0", "iPhone11,8", "A12", "18.7", "22H20", "XR", True)
        self.runs = 0

    def readiness(self, *, deep=True):
        return Readiness(reasons=self.reasons)

    def run(self, manifest, model_path, timeout_s):
        self.runs += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def diagnostics(self):
        return Diagnostics(log_lines=["runner: last words"], crash_report="EXC_BAD_ACCESS")

    def reboot(self):
        pass

    def close(self):
        pass


def batch():
    return RunBatch(
        run_id=uuid4(),
        attempt=1,
        job_id=uuid4(),
        model=ModelRef(sha256=SHA, filename="m.mlmodel", format="mlmodel", size_bytes=1),
        device_class="iPhone11,8",
        spec=RunSpec(compute_units=["all", "cpuOnly"], timeout_s=100),
        created_at=datetime.now(UTC),
    )


def result(settings=None, error=None, simulated=True):
    now = datetime.now(UTC)
    return RunnerResult(
        batch_id="b",
        runner_version="t",
        simulated=simulated,
        device=DeviceFacts(product_type="iPhone11,8", os_version="18.7", os_build="22H20"),
        model_sha256=SHA,
        thermal_before="nominal",
        thermal_after="nominal",
        settings=settings or [],
        error=error,
        started_at=now,
        finished_at=now,
    )


def ok_setting(units):
    return SettingResult(
        compute_units=units, latencies_ms=[1.0, 2.0], stats=LatencyStats(**summarize([1.0, 2.0]))
    )


def failed_setting(units, kind):
    return SettingResult(
        compute_units=units, error=RunnerError(kind=kind, message=f"{kind} failed")
    )


def fetch(_batch):
    return Path("/nonexistent/m.mlmodel")


def test_manifest_carries_all_settings_in_one_batch():
    b = batch()
    manifest = manifest_for(b)
    assert manifest.compute_units == ["all", "cpuOnly"]
    assert manifest.batch_id == b.batch_id
    assert manifest.time_budget_s < b.spec.timeout_s  # room for push, launch, pull


def test_the_cold_load_mode_travels_from_the_submission_to_the_manifest():
    from orchestrator.dispatch import SubmitOptions, make_spec
    from orchestrator.errors import UsageError

    assert manifest_for(batch()).cold_load == "process"  # the default: no extra compiles
    spec = make_spec(SubmitOptions(cold_load="fresh_compile"))
    fresh = batch().model_copy(update={"spec": spec})
    assert manifest_for(fresh).cold_load == "fresh_compile"
    with pytest.raises(UsageError, match="cold_load"):
        make_spec(SubmitOptions(cold_load="lukewarm"))


def test_ok_with_one_failing_setting_keeps_the_others():
    r = result([ok_setting("all"), failed_setting("cpuOnly", "predict")])
    assert classify(r) == (BatchOutcome.OK, None)


def test_model_failing_to_compile_is_a_final_model_error():
    outcome, failure = classify(result(error=RunnerError(kind="compile", message="bad op")))
    assert outcome is BatchOutcome.MODEL_ERROR and not failure.infra


def test_every_setting_failing_to_load_is_a_model_error():
    r = result([failed_setting("all", "load"), failed_setting("cpuOnly", "load")])
    assert classify(r)[0] is BatchOutcome.MODEL_ERROR


def test_runner_internal_error_is_infra():
    outcome, failure = classify(result(error=RunnerError(kind="internal", message="oops")))
    assert outcome is BatchOutcome.INFRA_ERROR and failure.infra


def test_an_interrupted_setting_makes_the_batch_infra_even_beside_good_ones():
    # The app left the foreground in cpuOnly's slot: all measured fine, but the settings are
    # compared with each other, so the whole batch is retried, never judged.
    interrupted = failed_setting("cpuOnly", "interrupted")
    for settings in (
        [ok_setting("all"), interrupted],
        [failed_setting("all", "load"), interrupted],
    ):
        outcome, failure = classify(result(settings))
        assert outcome is BatchOutcome.INFRA_ERROR
        assert failure.infra and failure.kind == "interrupted"
        assert "left the foreground" in failure.message


def test_a_batch_interrupted_before_any_measurement_is_infra():
    error = RunnerError(kind="interrupted", message="before any setting was measured")
    outcome, failure = classify(result([failed_setting("all", "interrupted")], error=error))
    assert (outcome, failure.kind, failure.infra) == (BatchOutcome.INFRA_ERROR, "interrupted", True)
    assert "before any setting" in failure.message


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (DeviceGone("unplugged", udid="SIM-X-0"), "device_gone"),
        (RunnerTimeout("no done marker"), "runner_timeout"),
        (ProtocolError("malformed result.json"), "protocol"),
        (ArtifactError("cannot download"), "artifact"),
    ],
)
def test_device_trouble_becomes_an_infra_failure_with_diagnostics(error, kind):
    device = ScriptedDevice(error)
    out = execute(batch(), device, agent="a", fetch_model=fetch)
    assert out.outcome is BatchOutcome.INFRA_ERROR
    assert out.failure.kind == kind
    if error.infra:
        assert "crash report: EXC_BAD_ACCESS" in out.failure.diagnostics


def test_not_ready_device_does_not_run():
    device = ScriptedDevice(result([ok_setting("all")]), reasons=["battery 5% and not charging"])
    out = execute(batch(), device, agent="a", fetch_model=fetch)
    assert device.runs == 0
    assert out.outcome is BatchOutcome.INFRA_ERROR
    assert out.failure.kind == "not_ready"
    assert "battery" in out.failure.message


def test_result_lying_about_simulation_is_refused():
    device = ScriptedDevice(result([ok_setting("all")], simulated=False))
    out = execute(batch(), device, agent="a", fetch_model=fetch)
    assert out.outcome is BatchOutcome.INFRA_ERROR


def test_success_carries_the_runner_result():
    device = ScriptedDevice(result([ok_setting("all"), ok_setting("cpuOnly")]))
    out = execute(batch(), device, agent="a", fetch_model=fetch)
    assert out.outcome is BatchOutcome.OK
    assert out.device.simulated and out.runner_result.settings[0].compute_units == "all"
