"""The runner app as the agents rely on it: the harness's own output validates with the
protocol, and project.yml / Info.plist / sources carry the names and keys the driver uses."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import yaml

from agents.devices.ios.readiness import RunnerConfig
from agents.devices.ios.runner import inbox, outbox
from orchestrator import protocol
from orchestrator.settings import Settings

RUNNER = Path(__file__).resolve().parents[2] / "ios-runner"


def test_harness_result_written_by_swift_validates_with_the_protocol() -> None:
    raw = (RUNNER / "Fixtures" / "generated" / "harness-result.json").read_text()
    result = protocol.RunnerResult.model_validate_json(raw)
    assert result.simulated, "a fake-executor result must say it was simulated"
    by_units = {s.compute_units: s for s in result.settings}
    assert set(by_units) == set(protocol.ComputeUnits)
    assert by_units[protocol.ComputeUnits.CPU_AND_GPU].error is not None
    assert all(len(s.latencies_ms) == 12 for s in result.settings if s.error is None)
    assert result.compute_plan is not None and result.compute_plan.ops


def _project() -> dict[str, Any]:
    project: dict[str, Any] = yaml.safe_load((RUNNER / "project.yml").read_text())
    return project


def test_project_builds_the_app_the_driver_launches() -> None:
    project = _project()
    target = project["targets"]["AneFarmRunner"]
    base = target["settings"]["base"]
    assert target["platform"] == "iOS"
    assert target["deploymentTarget"] == "16.0"
    assert base["PRODUCT_BUNDLE_IDENTIFIER"] == RunnerConfig().bundle_id
    assert (
        base["PRODUCT_BUNDLE_IDENTIFIER"] == Settings.model_fields["ios_runner_bundle_id"].default
    )
    assert base["PRODUCT_NAME"] == RunnerConfig().process_name  # crash reports are found by it
    assert base["CODE_SIGN_IDENTITY"] == "Apple Development"
    assert {"package": "RunnerCore", "product": "RunnerCore"} in target["dependencies"]
    assert project["packages"]["RunnerCore"]["path"] == "."
    sources = [s["path"] if isinstance(s, dict) else s for s in target["sources"]]
    for source in sources:
        assert (RUNNER / source).is_dir(), f"project.yml names a missing folder {source}"
    assert (RUNNER / base["INFOPLIST_FILE"]).is_file()


def test_info_plist_shares_files_and_takes_its_version_from_the_build() -> None:
    project = _project()
    base = project["targets"]["AneFarmRunner"]["settings"]["base"]
    with (RUNNER / base["INFOPLIST_FILE"]).open("rb") as file:
        info = plistlib.load(file)
    assert info["UIFileSharingEnabled"] is True
    # The version agents compare (ios_runner_version) is the build setting the Makefile sets.
    assert info["CFBundleVersion"] == "$(CURRENT_PROJECT_VERSION)"
    assert "CURRENT_PROJECT_VERSION" in base
    assert info["CFBundleIdentifier"] == "$(PRODUCT_BUNDLE_IDENTIFIER)"


def test_sources_use_the_driver_paths_and_launch_arguments() -> None:
    app = (RUNNER / "App" / "RunnerApp.swift").read_text()
    mailbox = (RUNNER / "Sources" / "RunnerCore" / "Mailbox.swift").read_text()
    assert '"--batch"' in app and '"ANEFARM_BATCH_ID"' in app
    assert "CoreMLExecutor()" in app
    # Documents/anefarm/{inbox,outbox}/<batch>, result.json then done, as agents/devices/ios/runner.py.
    assert inbox("b") == "Documents/anefarm/inbox/b" and outbox("b") == "Documents/anefarm/outbox/b"
    for name in ('"anefarm"', '"inbox"', '"outbox"', '"result.json"', '"done"', '"manifest.json"'):
        assert name in mailbox, name
    executor = (RUNNER / "Sources" / "RunnerCore" / "CoreMLExecutor.swift").read_text()
    assert executor.startswith("//") and "#if canImport(CoreML)" in executor
    assert "#available(iOS 17.4" in executor and "#available(iOS 16" in executor


def test_makefile_exports_a_development_ipa_with_the_team_from_the_environment() -> None:
    makefile = (RUNNER / "Makefile").read_text()
    assert "ANEFARM_TEAM_ID" in makefile and "xcodegen generate" in makefile
    with (RUNNER / "ExportOptions.plist").open("rb") as file:
        assert plistlib.load(file)["method"] == "development"
