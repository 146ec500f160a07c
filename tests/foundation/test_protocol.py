"""Protocol messages: strict validation at every process boundary."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from orchestrator.protocol import (
    BatchOutcome,
    ComputeUnits,
    DeviceFacts,
    DeviceInfo,
    FailureInfo,
    LatencyStats,
    ModelFormat,
    ModelRef,
    RunBatch,
    RunBatchResult,
    RunnerError,
    RunnerErrorKind,
    RunnerManifest,
    RunnerResult,
    RunSpec,
    SettingResult,
    ThermalState,
)
from orchestrator.stats import summarize

SHA = "a" * 64
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def setting(units=ComputeUnits.ALL, samples=(1.0, 2.0, 3.0)):
    return SettingResult(
        compute_units=units,
        cold_load_ms=10.0,
        cold_load_provenance="fresh_process",
        warm_load_ms=2.0,
        first_prediction_ms=5.0,
        latencies_ms=list(samples),
        stats=LatencyStats(**summarize(samples)),
    )


def runner_result(**changes):
    base = dict(
        batch_id="b-1",
        runner_version="1.0",
        simulated=True,
        device=DeviceFacts(product_type="iPhone11,8", os_version="18.7", os_build="22H20"),
        model_sha256=SHA,
        thermal_before=ThermalState.NOMINAL,
        thermal_after=ThermalState.FAIR,
        settings=[setting()],
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=3),
    )
    base.update(changes)
    return RunnerResult(**base)


def test_valid_result_round_trips_through_json():
    result = runner_result()
    again = RunnerResult.model_validate_json(result.model_dump_json())
    assert again == result


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_timings_must_be_finite_and_non_negative(bad):
    with pytest.raises(ValidationError):
        SettingResult(
            compute_units="all", latencies_ms=[bad], stats=LatencyStats(**summarize([1.0]))
        )


def test_unknown_fields_are_refused():
    data = runner_result().model_dump(mode="json")
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        RunnerResult.model_validate(data)


def test_newer_schema_version_is_refused():
    data = runner_result().model_dump(mode="json")
    data["schema_version"] = 2
    with pytest.raises(ValidationError):
        RunnerResult.model_validate(data)


def test_stats_out_of_order_are_refused():
    with pytest.raises(ValidationError, match="out of order"):
        LatencyStats(count=2, min=5, max=1, mean=3, std=1, p50=3, p90=3, p99=3)


def test_setting_without_samples_needs_an_error():
    with pytest.raises(ValidationError, match="no latency samples"):
        SettingResult(compute_units="cpuOnly")
    ok = SettingResult(compute_units="cpuOnly", error={"kind": "load", "message": "nope"})
    assert ok.error.kind == "load"


def test_a_cold_load_figure_says_what_it_followed():
    # A cold load after a fresh compile and one from a warm cache differ several-fold: a
    # figure without its provenance (or a provenance without a figure) is refused.
    with pytest.raises(ValidationError, match="provenance go together"):
        SettingResult.model_validate(setting().model_dump() | {"cold_load_provenance": None})
    with pytest.raises(ValidationError, match="provenance go together"):
        SettingResult.model_validate(setting().model_dump() | {"cold_load_ms": None})
    with pytest.raises(ValidationError):
        SettingResult.model_validate(setting().model_dump() | {"cold_load_provenance": "lukewarm"})
    for provenance in ("fresh_compile", "fresh_process", "warm_cache"):
        data = setting().model_dump() | {"cold_load_provenance": provenance}
        assert SettingResult.model_validate(data).cold_load_provenance == provenance


def test_interrupted_is_a_runner_error_kind():
    error = RunnerError(kind="interrupted", message="the app left the foreground")
    assert error.kind is RunnerErrorKind.INTERRUPTED
    assert runner_result(settings=[], error=error).error == error


def test_stats_count_must_match_samples():
    with pytest.raises(ValidationError, match="count"):
        SettingResult(
            compute_units="all", latencies_ms=[1.0, 2.0], stats=LatencyStats(**summarize([1.0]))
        )


def test_duplicate_settings_and_time_travel_are_refused():
    with pytest.raises(ValidationError, match="twice"):
        runner_result(settings=[setting(), setting()])
    with pytest.raises(ValidationError, match="before"):
        runner_result(finished_at=NOW - timedelta(seconds=1))


def test_sample_lists_are_bounded():
    with pytest.raises(ValidationError):
        SettingResult(
            compute_units="all",
            latencies_ms=[1.0] * 100_001,
            stats=LatencyStats(**summarize([1.0])),
        )


def test_run_spec_refuses_nonsense():
    with pytest.raises(ValidationError):
        RunSpec(compute_units=[], iterations=10)
    with pytest.raises(ValidationError):
        RunSpec(compute_units=["all", "all"])
    with pytest.raises(ValidationError):
        RunSpec(compute_units=["all"], iterations=0)
    with pytest.raises(ValidationError):
        RunSpec(compute_units=["gpuOnly"])


def test_batch_ids_and_queues_friendly_identifiers():
    batch = RunBatch(
        run_id=uuid4(),
        attempt=2,
        job_id=uuid4(),
        model=ModelRef(
            sha256=SHA, filename="m.mlpackage", format=ModelFormat.MLPACKAGE, size_bytes=10
        ),
        device_class="iPhone11,8",
        spec=RunSpec(compute_units=["all"]),
        created_at=NOW,
    )
    assert batch.batch_id.endswith("-a2")
    RunnerManifest(
        batch_id=batch.batch_id,
        model={"filename": "m.mlpackage", "sha256": SHA, "format": "mlpackage"},
        compute_units=["all"],
        iterations=1,
        warmup=0,
        time_budget_s=10,
    )
    with pytest.raises(ValidationError):
        DeviceInfo(
            udid="bad,udid",
            product_type="iPhone11,8",
            os_version="18.7",
            os_build="x",
            simulated=True,
        )
    with pytest.raises(ValidationError):
        ModelRef(sha256="A" * 64, filename="m", format="mlmodel", size_bytes=1)


def test_batch_result_outcome_must_match_its_content():
    device = DeviceInfo(
        udid="SIM-1", product_type="iPhone11,8", os_version="18.7", os_build="22H20", simulated=True
    )
    common = dict(
        run_id=uuid4(),
        attempt=1,
        job_id=uuid4(),
        agent="a",
        device=device,
        started_at=NOW,
        finished_at=NOW,
    )
    with pytest.raises(ValidationError, match="needs a runner_result"):
        RunBatchResult(outcome=BatchOutcome.OK, **common)
    with pytest.raises(ValidationError, match="needs a failure"):
        RunBatchResult(outcome=BatchOutcome.INFRA_ERROR, **common)
    real = device.model_copy(update={"simulated": False})
    with pytest.raises(ValidationError, match="simulated"):
        RunBatchResult(
            outcome=BatchOutcome.OK, runner_result=runner_result(), **{**common, "device": real}
        )
    failed = RunBatchResult(
        outcome=BatchOutcome.INFRA_ERROR,
        failure=FailureInfo(kind="device_gone", message="unplugged", infra=True),
        **common,
    )
    assert failed.failure.infra
