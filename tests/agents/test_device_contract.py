"""The Device contract suite (device_contract.py), run against every implementation."""

from __future__ import annotations

import uuid

import pytest

from agents.devices.base import Device, Diagnostics, Readiness
from orchestrator import catalog
from orchestrator.errors import DeviceNotReady, RunnerCrashed, RunnerTimeout
from orchestrator.protocol import (
    ComputeUnits,
    DeviceInfo,
    ManifestModel,
    ModelFormat,
    RunnerManifest,
    RunnerResult,
    ThermalState,
)
from tests.agents.device_contract import DeviceCase


def manifest_for(case: DeviceCase, *, iterations: int = 20) -> RunnerManifest:
    return RunnerManifest(
        batch_id=f"contract-{uuid.uuid4().hex[:12]}",
        model=ManifestModel(filename=case.model_path.name, sha256=case.model_sha256,
                            format=ModelFormat.MLPACKAGE),
        compute_units=[ComputeUnits.ALL, ComputeUnits.CPU_ONLY],
        iterations=iterations, warmup=2, time_budget_s=300,
    )  # fmt: skip


def test_identity_is_valid_and_matches_the_catalog(device_case: DeviceCase) -> None:
    device = device_case.healthy()
    assert isinstance(device, Device)
    ident = device.identity
    info = DeviceInfo.model_validate(ident.to_info().model_dump())
    assert info.udid == ident.udid and info.simulated == ident.simulated
    assert catalog.device(ident.product_type).chip == ident.chip
    assert ident.name and ident.os_build
    assert catalog.device(ident.product_type).min_os.split(".")[0] <= ident.os_version.split(".")[0]
    device.close()


def test_readiness_of_a_healthy_device(device_case: DeviceCase) -> None:
    device = device_case.healthy()
    ready = device.readiness()
    assert isinstance(ready, Readiness)
    assert ready.ready and ready.reasons == []
    assert ready.paired and ready.developer_mode and ready.runner_version
    assert ready.battery_percent is None or 0 <= ready.battery_percent <= 100
    assert ready.thermal_state is None or isinstance(ready.thermal_state, ThermalState)
    device.close()


def test_not_ready_device_says_why_and_refuses_to_run(device_case: DeviceCase) -> None:
    device = device_case.not_ready()
    ready = device.readiness()
    assert not ready.ready and all(reason.strip() for reason in ready.reasons)
    with pytest.raises(DeviceNotReady) as caught:
        device.run(manifest_for(device_case), device_case.model_path, timeout_s=300)
    assert caught.value.reasons == ready.reasons and caught.value.infra
    assert caught.value.udid == device.identity.udid
    device.close()


def test_run_returns_a_valid_result_for_the_manifest(device_case: DeviceCase) -> None:
    device = device_case.healthy()
    manifest = manifest_for(device_case, iterations=20)
    result = device.run(manifest, device_case.model_path, timeout_s=300)
    again = RunnerResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert result.batch_id == manifest.batch_id
    assert result.model_sha256 == device_case.model_sha256
    assert result.simulated == device.identity.simulated
    assert result.device.product_type == device.identity.product_type
    assert result.device.os_version == device.identity.os_version
    assert [s.compute_units for s in result.settings] == manifest.compute_units
    for setting in result.settings:
        assert setting.error is None and setting.stats is not None
        assert len(setting.latencies_ms) == manifest.iterations  # warm-up excluded
        assert setting.cold_load_ms is not None and setting.first_prediction_ms is not None
    assert not result.partial and result.error is None
    assert result.finished_at >= result.started_at
    device.close()


def test_a_run_longer_than_the_timeout_raises_runner_timeout(device_case: DeviceCase) -> None:
    device = device_case.healthy()
    with pytest.raises(RunnerTimeout) as caught:
        device.run(manifest_for(device_case), device_case.model_path, timeout_s=0.05)
    assert caught.value.infra and caught.value.udid == device.identity.udid
    assert device.diagnostics().log_lines, "a timeout must leave something to diagnose"
    device.close()


def test_diagnostics_after_a_runner_crash(device_case: DeviceCase) -> None:
    device = device_case.crashing()
    with pytest.raises(RunnerCrashed) as caught:
        device.run(manifest_for(device_case), device_case.model_path, timeout_s=300)
    assert caught.value.infra and caught.value.diagnostics
    diagnostics = device.diagnostics()
    assert isinstance(diagnostics, Diagnostics)
    assert diagnostics.crash_report and diagnostics.log_lines
    assert any("crash report" in line for line in diagnostics.as_lines())
    device.close()


def test_close_is_idempotent(device_case: DeviceCase) -> None:
    device = device_case.healthy()
    device.close()
    device.close()
